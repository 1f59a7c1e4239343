"""tunelab: fine-tune a pretrained language model and compare methods."""
