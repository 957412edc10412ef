/* How many CPUs this machine really gives a process right now.
 *
 * A shared or virtual machine may list 2 CPUs and yet run two busy threads at
 * well under twice the speed of one (a neighbour, the hypervisor). No
 * scheduler can scale beyond that, so bench/report.py runs this probe at the
 * start and at the end of `make bench` and prints it beside the load average.
 *
 * It times a fixed amount of integer work on one thread, then the same amount
 * on each of N threads at once (N = the CPUs this process may use, or argv[1]),
 * three times each, and prints the best of each:
 *
 *     cpu_capacity <effective CPUs> <N> <ms one thread> <ms N threads>
 *
 * where effective CPUs = N x (one thread's time) / (N threads' time): N on a
 * machine that gives every thread a CPU of its own, 1 when they share one. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WORK 100000000ull   /* about 50-100 ms on one core of a current x86 */

static void *spin(void *arg)
{
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < WORK; i++)
        x += i;
    (void)arg;
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double run(int n)
{
    pthread_t th[64];
    double t0 = now_ms();
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, spin, NULL) != 0) {
            perror("pthread_create");
            exit(1);
        }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    if (n <= 0) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    if (n > 64)
        n = 64;
    double one = 1e300, all = 1e300;
    for (int r = 0; r < 3; r++) {
        double a = run(1), b = run(n);
        if (a < one)
            one = a;
        if (b < all)
            all = b;
    }
    printf("cpu_capacity %.2f %d %.1f %.1f\n", n * one / all, n, one, all);
    return 0;
}
