#include "CEarlySignal.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t early_stop_signal = 0;

static void remember(int sig) {
    early_stop_signal = sig;
}

// Runs before anything else of the process, even the libraries' initializers (Foundation's and
// the Swift runtime's take milliseconds): from then on a SIGTERM or SIGINT is remembered, and the
// engine stops cleanly as soon as it runs (BudgetdCommand.swift).
static void budgetd_install_early_signal_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = remember;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

int budgetd_early_stop_signal(void) {
    return early_stop_signal;
}

// An executable's `.preinit_array` runs before any shared library's initializers (a
// constructor would run after them).
__attribute__((section(".preinit_array"), used))
static void (*const budgetd_early_signal_preinit)(void) = budgetd_install_early_signal_handlers;
