/* On a crash, name the test case that was running: with a signal, the failure output so
 * far is all there is. Header-only, for the self-contained error and API tests. */
#ifndef CONVBLAS_TEST_CRASH_REPORT_H
#define CONVBLAS_TEST_CRASH_REPORT_H

#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static const char *crash_program = "test";
static const char *crash_case = "";
static size_t crash_case_size;

static void crash_report(int sig) {
    (void)!write(2, "\n", 1);
    (void)!write(2, crash_program, strlen(crash_program));
    static const char head[] = ": crashed (signal) in case: ";
    (void)!write(2, head, sizeof head - 1);
    size_t n = 0;
    while (n < crash_case_size && crash_case[n]) n++;
    (void)!write(2, crash_case, n);
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* case_name: the buffer the test keeps its current case's name in (read at crash time). */
static void crash_report_install(const char *program, const char *case_name, size_t size) {
    crash_program = program;
    crash_case = case_name;
    crash_case_size = size;
    signal(SIGSEGV, crash_report);
    signal(SIGBUS, crash_report);
    signal(SIGFPE, crash_report);
    signal(SIGABRT, crash_report);
}

#endif
