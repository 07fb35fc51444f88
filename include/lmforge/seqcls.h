/* Sequence classification with a head (transformers' GPT2ForSequenceClassification /
 * LlamaForSequenceClassification): score.weight (num_labels, d_model), no bias, applied to the
 * final-norm output of the last non-padding token. A technique (src/tech/seqcls.c) over the
 * engine's seams: the head is a tensor added to the model (lf_model_add_param), the loss a term
 * that reads the last hidden state (LF_LOGITS_NONE) and backpropagates through the final norm
 * into lf_model_hidden_grad, and the data a batch source of right-padded (inputs, label) rows.
 * Full fine-tuning, head-only (freeze the rest) and LoRA adapters all train through it. */
#ifndef LMFORGE_SEQCLS_H
#define LMFORGE_SEQCLS_H

#include "lmforge/batch.h"
#include "lmforge/distill.h"
#include "lmforge/loss.h"
#include "lmforge/model.h"
#include "lmforge/tokenizer.h"
#include "lmforge/train.h"

typedef struct lf_seqcls lf_seqcls;

/* The head on m: score.weight from dir/model.safetensors when it holds one (dir may be NULL),
 * else a new one of num_labels rows drawn from N(0, 0.02²) with seed (transformers'
 * initializer_range). num_labels 0: whatever the file has. Trainable. */
lf_status lf_seqcls_attach(lf_seqcls **out, lf_model *m, int num_labels, const char *dir, uint64_t seed);
void lf_seqcls_free(lf_seqcls *h); /* the tensor stays in the model */
/* 1 when m already holds score.weight (a GGUF classifier) or dir (may be NULL) has one to attach */
int lf_seqcls_has_head(const lf_model *m, const char *dir);
int lf_seqcls_num_labels(const lf_seqcls *h);
int lf_seqcls_trained(const lf_seqcls *h); /* 1: the weights came from a file */
lf_param *lf_seqcls_weight(lf_seqcls *h);
/* label names read from dir's config.json id2label (NULL when absent); valid while h lives */
const char *lf_seqcls_label_name(const lf_seqcls *h, int k);
/* Texts longer than the context keep their first tokens (0, transformers' default
 * truncation_side = "right") or their last (1, "left"). Read from the folder the head came from
 * (config.json's, or an adapter's score.safetensors metadata, "truncation_side"); written by
 * lf_seqcls_export. News and documents put their topic first; keep the start for them. */
int lf_seqcls_keep_end(const lf_seqcls *h);
void lf_seqcls_set_keep_end(lf_seqcls *h, int keep_end);

/* Rows carry their label as the one target >= 0, at the row's last non-padding position (the
 * token the head reads); every other target is -1. */

/* Cross-entropy over the label logits, mean over the rows that have a label. The term keeps
 * the logits of its last forward: lf_seqcls_last_logits gives (B, num_labels). */
lf_loss_term *lf_seqcls_loss_new(lf_seqcls *h);
const float *lf_seqcls_last_logits(const lf_loss_term *t, int *rows);

/* Distillation of a score head: τ²·D(softmax(teacher/τ) ‖ softmax(student/τ)) over the K label
 * logits of each labelled row (D: forward KL, reverse KL or generalized JSD(β), as distill.h
 * defines them), mean over the rows. The teacher's head sits on another model (a trained
 * classifier, frozen, forward-only), which the term runs on the same inputs each forward and reads
 * at the same positions; its width may differ from the student's. The term backpropagates into
 * the student's head, final norm and last hidden state only. NULL (with the error set) when the
 * label counts differ or τ, β are out of range. lf_seqcls_teacher_logits: (rows, K) of the last
 * forward (the student's are lf_seqcls_last_logits). */
lf_loss_term *lf_seqcls_distill_new(lf_seqcls *student, lf_seqcls *teacher, lf_distill_kind kind, float temperature, float beta);
const float *lf_seqcls_teacher_logits(const lf_loss_term *t);

/* A source of (text, label) rows: texts encoded once (BOS for SentencePiece tokenizers), the
 * first T tokens kept (the last with LF_SEQCLS_KEEP_END), right padding with pad_id, drawn in a
 * seeded shuffled order per epoch (LF_SEQCLS_SEQUENTIAL: in order, for evaluation). The state is
 * (epoch, position). */
#define LF_SEQCLS_SEQUENTIAL 1u
#define LF_SEQCLS_KEEP_END 2u
lf_status lf_seqcls_source_new(lf_batch_source **out, const lf_tokenizer *tok, const char *const *texts, const int *labels,
                               size_t n, int T, int pad_id, uint64_t seed, unsigned flags);

/* Label logits (n, K) (may be NULL) and argmax predictions (n) (may be NULL) for texts,
 * B rows per forward, max_tokens tokens of each (0: the model's context), cut as
 * lf_seqcls_keep_end says. */
lf_status lf_seqcls_predict(lf_seqcls *h, const lf_tokenizer *tok, const char *const *texts, size_t n, int max_tokens,
                            int B, int *pred, float *logits);

/* A Hugging Face folder that transformers loads as *ForSequenceClassification with the same
 * logits: the model's tensors (lf_hf_save) + score.weight; config.json gets architectures,
 * num_labels, id2label / label2id (labels may be NULL: LABEL_0..) and pad_token_id. */
lf_status lf_seqcls_export(lf_seqcls *h, const char *dir, const char *const *labels, int pad_id);

/* lmforge train with task = classify (src/tech/cls_train.c): fine-tunes c->init on a prepared
 * labelled folder with head = lm (label tokens) or score (this head), evaluates loss, accuracy
 * and macro-F1 on the validation split, early-stops and keeps best/ by c->metric. Writes
 * best/ and final/ (Hugging Face folders with the tokenizer), metrics.jsonl; no step checkpoints. */
lf_status lf_cls_train(const lf_train_config *c, volatile sig_atomic_t *stop, lf_train_result *res);

#endif
