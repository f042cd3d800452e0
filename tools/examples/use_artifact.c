/* Using a compiled model from C: the demo model (tools/examples/demo.kir, a small CNN that
 * takes a 28x28 image and gives 10 class probabilities) compiled with
 *
 *     kiln compile tools/examples/demo.kir -o libnet.so --name net --header net.h
 *     cc -o use_artifact use_artifact.c -I. -L. -lnet -Wl,-rpath,'$ORIGIN'
 *
 * and run on a generated image. Only net.h and libnet.so are needed: no kiln library, no model
 * file. Usage: use_artifact [THREADS [IMAGE.raw]] - the image is 784 floats (native byte
 * order) or, without a file, a fixed pattern; the probabilities are printed one per line. */
#include <stdio.h>
#include <stdlib.h>

#include "net.h"

#define IMAGE_SIZE (1 * 1 * 28 * 28)
#define CLASSES 10

int main(int argc, char **argv) {
  static float image[IMAGE_SIZE];
  float probs[CLASSES];
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2) {
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(image, sizeof image[0], IMAGE_SIZE, f) != IMAGE_SIZE) {
      fprintf(stderr, "use_artifact: cannot read %d floats from %s\n", IMAGE_SIZE, argv[2]);
      return 1;
    }
    fclose(f);
  } else {
    for (int i = 0; i < IMAGE_SIZE; i++)
      image[i] = (float)((i * 37) % 256) / 255.0f;
  }

  /* One context per thread that runs the model; it owns NET_WORKSPACE_SIZE bytes. */
  net_ctx *ctx = NULL;
  int rc = net_create(&ctx, threads);
  if (rc != NET_OK) {
    fprintf(stderr, "use_artifact: net_create: %s\n", net_status_message(rc));
    return 1;
  }
  net_inputs in = {image};
  net_outputs out = {probs};
  rc = net_run(ctx, &in, &out);
  if (rc != NET_OK) {
    fprintf(stderr, "use_artifact: net_run: %s: %s\n", net_status_message(rc),
            net_error_message(ctx));
    net_destroy(ctx);
    return 1;
  }
  for (int i = 0; i < CLASSES; i++)
    printf("%.9g\n", probs[i]);
  net_destroy(ctx);
  return 0;
}
