# Trains a real SentencePiece model (BPE or Unigram, Debian's python3-sentencepiece) and writes it as a Hugging Face
# tokenizer.json the way Hugging Face's slow-to-fast conversion lays out Llama (BPE) and Metaspace/Unigram tokenizers,
# plus SentencePiece's own ids for sample texts, so the tests can check transformers.js's ids against the library.
import argparse
import json
import os

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

SPACE = "\u2581"


def train(text_file: str, prefix: str, model_type: str, vocab_size: int) -> spm.SentencePieceProcessor:
    spm.SentencePieceTrainer.train(
        input=text_file,
        model_prefix=prefix,
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=model_type == "bpe",
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        allow_whitespace_only_pieces=True,
        split_digits=True,
        max_sentence_length=1 << 16,
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def bpe_merges(vocab: dict) -> list:
    """Merges from a BPE vocabulary: every split of a piece into two pieces, ordered by the merged piece's id."""
    merges = []
    for piece, piece_id in vocab.items():
        splits = [(piece[:i], piece[i:]) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
        splits.sort(key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
        merges.extend((left, right, piece_id) for left, right in splits)
    merges.sort(key=lambda merge: (merge[2], len(merge[0]), len(merge[1])))
    return [f"{left} {right}" for left, right, _ in merges]


def added_tokens(proto) -> list:
    # Control (3) and unknown (2) pieces are special added tokens; user-defined (4) ones are added, not special.
    tokens = []
    for piece_id, piece in enumerate(proto.pieces):
        if piece.type in (2, 3, 4):
            tokens.append(
                {
                    "id": piece_id,
                    "content": piece.piece,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": piece.type == 4,
                    "special": piece.type != 4,
                }
            )
    return tokens


def tokenizer_json(proto, model_type: str) -> dict:
    pieces = [(piece.piece, piece.score) for piece in proto.pieces]
    unk_id = proto.trainer_spec.unk_id
    common = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens(proto)}
    if model_type == "bpe":
        # Llama's layout: the normalizer turns spaces into ▁ and prepends one; BPE with byte fallback; the decoder
        # undoes both.
        vocab = {piece: index for index, (piece, _) in enumerate(pieces)}
        return {
            **common,
            "normalizer": {
                "type": "Sequence",
                "normalizers": [
                    {"type": "Prepend", "prepend": SPACE},
                    {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
                ],
            },
            "pre_tokenizer": None,
            "post_processor": None,
            "decoder": {
                "type": "Sequence",
                "decoders": [
                    {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                    {"type": "ByteFallback"},
                    {"type": "Fuse"},
                    {"type": "Strip", "content": " ", "start": 1, "stop": 0},
                ],
            },
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": proto.pieces[unk_id].piece,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": True,
                "byte_fallback": True,
                "ignore_merges": False,
                "vocab": vocab,
                "merges": bpe_merges(vocab),
            },
        }
    # Unigram with a Metaspace pre-tokenizer and decoder.
    metaspace = {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "always", "split": True}
    return {
        **common,
        "normalizer": None,
        "pre_tokenizer": metaspace,
        "post_processor": None,
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": unk_id, "vocab": [[piece, score] for piece, score in pieces], "byte_fallback": False},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True, help="text file to train on")
    parser.add_argument("--samples", required=True, help="JSON list of texts to encode with SentencePiece")
    parser.add_argument("--out", required=True, help="folder for tokenizer.json, tokenizer_config.json, expected.json")
    parser.add_argument("--model-type", choices=["bpe", "unigram"], required=True)
    parser.add_argument("--vocab-size", type=int, default=600)
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    processor = train(args.train, os.path.join(args.out, "spm"), args.model_type, args.vocab_size)
    proto = sentencepiece_model_pb2.ModelProto()
    with open(os.path.join(args.out, "spm.model"), "rb") as f:
        proto.ParseFromString(f.read())

    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(proto, args.model_type), f, ensure_ascii=False)
    config = {
        "tokenizer_class": "LlamaTokenizer" if args.model_type == "bpe" else "PreTrainedTokenizerFast",
        "legacy": True,
        "add_bos_token": False,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False,
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)

    with open(args.samples, encoding="utf-8") as f:
        samples = json.load(f)
    expected = [{"text": text, "ids": processor.encode(text), "decoded": processor.decode(processor.encode(text))} for text in samples]
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
