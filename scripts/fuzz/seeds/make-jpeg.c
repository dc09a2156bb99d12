// Writes the JPEG seeds of the fuzz harness through libjpeg: gcc make-jpeg.c -o /tmp/mkjpeg -ljpeg
//   /tmp/mkjpeg OUT.jpg WIDTH HEIGHT PROGRESSIVE(0|1) RESTART_INTERVAL_MCUS [GRAY(0|1)]
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
int main(int argc, char** argv) {
  int W = atoi(argv[2]), H = atoi(argv[3]), prog = atoi(argv[4]), rst = atoi(argv[5]), gray = argc > 6 && atoi(argv[6]);
  struct jpeg_compress_struct c; struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e); jpeg_create_compress(&c);
  FILE* f = fopen(argv[1], "wb"); jpeg_stdio_dest(&c, f);
  c.image_width = W; c.image_height = H; c.input_components = gray ? 1 : 3; c.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c); jpeg_set_quality(&c, 90, TRUE);
  if (prog) jpeg_simple_progression(&c);
  c.restart_interval = rst;
  jpeg_start_compress(&c, TRUE);
  unsigned char* row = malloc(W * 3);
  for (int y = 0; y < H; y++) {
    for (int x = 0; x < W; x++) { int k = gray ? x : 3 * x; row[k] = (x * 255) / W; if (!gray) { row[k+1] = (y * 255) / H; row[k+2] = ((x + y) * 7) & 255; } }
    JSAMPROW r = row; jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c); fclose(f); return 0;
}
