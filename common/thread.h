/* The calling thread's scheduling priority. On Linux the nice value is per
 * thread: these change the calling thread only. */
#ifndef SONDE_THREAD_H
#define SONDE_THREAD_H

/* The calling thread's nice value (0 when it cannot be read). */
int thread_nice(void);

/* Set the calling thread's nice value. 0, or -errno (lowering it needs
 * root or CAP_SYS_NICE). */
int thread_set_nice(int nice);

/* Make the calling thread delta nice steps less urgent than it is now
 * (capped at 19): relative, so that `nice -n 10 sonde ...` stays lower. */
void thread_renice(int delta);

#endif
