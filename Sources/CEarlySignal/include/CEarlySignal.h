// SIGTERM and SIGINT caught from the process's first moment (CONTRACT §8: a stop on either is
// clean, exit 0). Until swift-service-lifecycle installs its own handling, well after start-up,
// the default action would kill budgetd outright (an audit: any signal in the first ~12 ms).
#ifndef BUDGETD_CEARLYSIGNAL_H
#define BUDGETD_CEARLYSIGNAL_H

/// The last SIGTERM or SIGINT caught before the service group took the signals over, or 0.
int budgetd_early_stop_signal(void);

#endif
