"""Fast [CLS]/mean embedding extraction with a Hugging Face encoder."""
