# The fuzz targets: tests/fuzz/fuzz_<name>.c each, seeds in corpus/<name>/, crashes kept as
# regression inputs in regressions/<name>/ (replayed by ctest), dictionaries in dict/<name>.dict.
set(LF_FUZZ_TARGETS safetensors hf_config tokenizer_json tokenizer_bin gpt2_bpe shard jsonl train_config
    trainer_state llama2c roundtrip labelled gguf)
