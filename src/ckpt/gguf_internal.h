/* Shared by the GGUF reader (gguf.c) and writer (gguf_write.c): one name map between our Hugging
 * Face parameter names and llama.cpp's tensor names, and llama.cpp's order of the q/k rows. */
#ifndef LF_GGUF_INTERNAL_H
#define LF_GGUF_INTERNAL_H

#include "lmforge/model.h"

/* the GGUF name of parameter hf; *perm_heads > 0 (the head count) when its rows are in llama.cpp's
 * RoPE order in the file. -1 for a name the map does not know. */
int lf_gguf_name(const lf_config *c, const char *hf, char *out, size_t n, int *perm_heads);

/* Rows of row_bytes bytes between our rotate-half order and llama.cpp's interleaved pairs: within
 * each of nheads heads, GGUF row 2p+k is our row k*half+p. The rows move whole, so this serves
 * float32 rows and encoded (quantized) rows alike. to_gguf: ours -> file; else file -> ours. */
void lf_gguf_permute_rows(void *dst, const void *src, int nheads, size_t rows, size_t row_bytes, int to_gguf);

#endif
