"""A tiny word-level Hugging Face tokenizer for the Python peers (vLLM's
`bench serve`, guidellm), which need one and cannot download any here.
Each token is one word, so the simulator's word count equals the token count.

    python make_tokenizer.py OUT_DIR
"""
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

words = [f"w{i}" for i in range(4000)]
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
for w in words:
    vocab[w] = len(vocab)
# Unknown words become "w0" (not a special token), so tools that build
# prompts from English text (guidellm) still get one word per token.
tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="w0"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>")
fast.model_max_length = 1 << 20
fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
fast.save_pretrained(sys.argv[1])
print(f"tokenizer with {len(vocab)} tokens written to {sys.argv[1]}")
