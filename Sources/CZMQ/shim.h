#ifndef BUDGETD_CZMQ_SHIM_H
#define BUDGETD_CZMQ_SHIM_H

// libzmq's C API for the ZMQ Swift module.
//
// No shims are needed today: every zmq_* function the wrapper calls is a plain
// (non-variadic) function, zmq_msg_t and zmq_pollitem_t import as ordinary
// structs, and Swift imports libzmq's error numbers (ETERM is the expression
// macro `ZMQ_HAUSNUMERO + 53`) as constants. Add `static inline` helpers here
// only for what Swift cannot call.
#include <errno.h>
#include <zmq.h>
// eventfd, for `PollSignal`: a descriptor another thread signals, polled beside the sockets
// (Swift's Glibc module does not export it).
#include <sys/eventfd.h>

#endif
