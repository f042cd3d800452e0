/* `peak THREADS [SECONDS]`: measures the machine's peak fp32 FMA rate for the benchmark table.
 *
 * Each of THREADS threads runs independent chains of fused multiply-adds on vector registers
 * (AVX-512 when the CPU has it, else AVX2+FMA, else scalar fmaf) for about SECONDS (default 0.2)
 * and counts them; enough chains are kept in flight to cover the FMA latency. Prints one JSON
 * object: {"isa", "threads", "gflops"} where gflops counts a multiply-add as two flops and is
 * the total of all threads. Not installed, not a test; tools/bench.sh runs it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KL_PEAK_X86 1
#endif

enum { CHAINS = 12, INNER = 1000 };

/* One step of all CHAINS chains, written out so that every accumulator stays in a register
 * whatever the optimization level. */
#define KL_PEAK_STEP(fma)                                                                        \
  do {                                                                                           \
    acc[0] = fma(acc[0], a, b);                                                                  \
    acc[1] = fma(acc[1], a, b);                                                                  \
    acc[2] = fma(acc[2], a, b);                                                                  \
    acc[3] = fma(acc[3], a, b);                                                                  \
    acc[4] = fma(acc[4], a, b);                                                                  \
    acc[5] = fma(acc[5], a, b);                                                                  \
    acc[6] = fma(acc[6], a, b);                                                                  \
    acc[7] = fma(acc[7], a, b);                                                                  \
    acc[8] = fma(acc[8], a, b);                                                                  \
    acc[9] = fma(acc[9], a, b);                                                                  \
    acc[10] = fma(acc[10], a, b);                                                                \
    acc[11] = fma(acc[11], a, b);                                                                \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct peak_job {
  int isa; /* 2: AVX-512, 1: AVX2, 0: scalar */
  double seconds;
  double flops;
  float sink;
} peak_job;

#ifdef KL_PEAK_X86
/* Runs rounds of INNER steps of CHAINS independent FMAs each; returns the rounds done. */
__attribute__((target("avx512f"))) static long run_avx512(double seconds, float *sink) {
  __m512 acc[CHAINS];
  for (int c = 0; c < CHAINS; c++)
    acc[c] = _mm512_set1_ps(1.0f + (float)c * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  long rounds = 0;
  double end = now_s() + seconds;
  do {
    for (int i = 0; i < INNER; i++) {
      KL_PEAK_STEP(_mm512_fmadd_ps);
    }
    rounds++;
  } while (now_s() < end);
  __m512 s = acc[0];
  for (int c = 1; c < CHAINS; c++)
    s = _mm512_add_ps(s, acc[c]);
  *sink = _mm512_reduce_add_ps(s);
  return rounds;
}

__attribute__((target("avx2,fma"))) static long run_avx2(double seconds, float *sink) {
  __m256 acc[CHAINS];
  for (int c = 0; c < CHAINS; c++)
    acc[c] = _mm256_set1_ps(1.0f + (float)c * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  long rounds = 0;
  double end = now_s() + seconds;
  do {
    for (int i = 0; i < INNER; i++) {
      KL_PEAK_STEP(_mm256_fmadd_ps);
    }
    rounds++;
  } while (now_s() < end);
  float lanes[8];
  __m256 s = acc[0];
  for (int c = 1; c < CHAINS; c++)
    s = _mm256_add_ps(s, acc[c]);
  _mm256_storeu_ps(lanes, s);
  *sink = lanes[0] + lanes[7];
  return rounds;
}
#endif

static long run_scalar(double seconds, float *sink) {
  volatile float seed = 1.0f;
  float acc[CHAINS];
  for (int c = 0; c < CHAINS; c++)
    acc[c] = seed + (float)c * 1e-3f;
  long rounds = 0;
  double end = now_s() + seconds;
  do {
    for (int i = 0; i < INNER; i++)
      for (int c = 0; c < CHAINS; c++)
        acc[c] = __builtin_fmaf(acc[c], 0.999999f, 1e-7f);
    rounds++;
  } while (now_s() < end);
  *sink = acc[0] + acc[CHAINS - 1];
  return rounds;
}

static void *peak_thread(void *arg) {
  peak_job *job = arg;
  long rounds;
  double lanes;
#ifdef KL_PEAK_X86
  if (job->isa == 2) {
    rounds = run_avx512(job->seconds, &job->sink);
    lanes = 16;
  } else if (job->isa == 1) {
    rounds = run_avx2(job->seconds, &job->sink);
    lanes = 8;
  } else
#endif
  {
    rounds = run_scalar(job->seconds, &job->sink);
    lanes = 1;
  }
  job->flops = (double)rounds * INNER * CHAINS * lanes * 2;
  return NULL;
}

int main(int argc, char **argv) {
  char *end = NULL;
  long threads = argc > 1 ? strtol(argv[1], &end, 10) : 1;
  if (argc > 3 || (argc > 1 && (*end != '\0' || threads < 1 || threads > 1024))) {
    fprintf(stderr, "usage: peak THREADS [SECONDS] (THREADS from 1 to 1024)\n");
    return 2;
  }
  double seconds = argc > 2 ? strtod(argv[2], &end) : 0.2;
  if (argc > 2 && (*end != '\0' || !(seconds > 0 && seconds <= 60))) {
    fprintf(stderr, "peak: SECONDS must be a number in (0, 60], not '%s'\n", argv[2]);
    return 2;
  }
  int isa = 0;
  const char *isa_name = "scalar";
#ifdef KL_PEAK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    isa = 2;
    isa_name = "avx512";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isa = 1;
    isa_name = "avx2";
  }
#endif
  peak_job *jobs = calloc((size_t)threads, sizeof *jobs);
  pthread_t *ids = calloc((size_t)threads, sizeof *ids);
  if (!jobs || !ids) {
    fprintf(stderr, "peak: out of memory\n");
    return 1;
  }
  /* A short untimed spin first lets the clock ramp up. */
  peak_job warm = {.isa = isa, .seconds = 0.05};
  peak_thread(&warm);
  double wall0 = now_s();
  for (long t = 0; t < threads; t++) {
    jobs[t] = (peak_job){.isa = isa, .seconds = seconds};
    if (pthread_create(&ids[t], NULL, peak_thread, &jobs[t]) != 0) {
      fprintf(stderr, "peak: cannot start thread %ld\n", t);
      return 1;
    }
  }
  double flops = 0;
  for (long t = 0; t < threads; t++) {
    pthread_join(ids[t], NULL);
    flops += jobs[t].flops;
  }
  double wall = now_s() - wall0;
  printf("{\"isa\": \"%s\", \"threads\": %ld, \"gflops\": %.3f, \"sink\": %g}\n", isa_name,
         threads, flops / wall / 1e9, (double)(jobs[0].sink + warm.sink));
  free(jobs);
  free(ids);
  return 0;
}
