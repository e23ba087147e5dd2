"""Text to token ids: the tokenizers, the vocabulary, the encoding of texts as ids (and the C++ tokenizer)."""
