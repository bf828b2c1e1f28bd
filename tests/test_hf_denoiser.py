"""Any transformers masked LM serves as a denoiser: tiny random configs built here."""

import pytest
import torch
from conftest import EASY, EASY_SOLUTION
from constrained.engine import HFMaskedLMDenoiser, make_noise
from transformers import BertConfig, BertForMaskedLM, BertTokenizer, ModernBertConfig, ModernBertForMaskedLM

from constrained import ModelMismatch, solve
from constrained.loading import load_denoiser
from constrained.solver import Solver, SolverConfig

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _bert(vocab_size=20):
    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64)).eval()


@pytest.mark.parametrize("arch", ["bert", "modernbert"])
def test_wrapped_masked_lm_with_coordinates_solves_with_renoising(sudoku_task, arch):
    if arch == "bert":
        base = _bert()
    else:
        torch.manual_seed(0)
        base = ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=20, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3,
            global_attn_every_n_layers=1, local_attention=16)).eval()
    token_map = torch.tensor([0, 4] + list(range(5, 14)))  # [PAD], [MASK], digits
    den = HFMaskedLMDenoiser(base, token_map, coord_sizes=sudoku_task.layout.coord_sizes)
    logits = den(sudoku_task.encode([EASY]).tokens, coords=sudoku_task.layout.coords)
    assert logits.shape == (1, 81, len(sudoku_task.vocab))
    s = Solver(sudoku_task, den, make_noise("mask", 1), SolverConfig(max_passes=64))
    assert s.run(sudoku_task.encode([EASY]))[0].solution == EASY_SOLUTION


def test_hub_style_checkpoint_loads_with_tokenizer_mapping(sudoku_task, tmp_path):
    vocab = SPECIALS + list("123456789")
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(str(tmp_path / "vocab.txt"))
    _bert(len(vocab)).save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    den, noise = load_denoiser(sudoku_task, tmp_path / "ckpt")
    assert isinstance(den, HFMaskedLMDenoiser) and noise.name == "mask"
    assert den.token_map.tolist() == [0, 4] + [vocab.index(d) for d in "123456789"]
    assert solve("sudoku", EASY, model=den).valid


def test_tokenizer_without_task_tokens_is_refused(sudoku_task, tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(SPECIALS + list("abc")) + "\n")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "ckpt")
    _bert(8).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ModelMismatch, match="task token '1'"):
        load_denoiser(sudoku_task, tmp_path / "ckpt")


def test_missing_model_path_is_named(sudoku_task, tmp_path):
    with pytest.raises(ModelMismatch, match="does not exist"):
        load_denoiser(sudoku_task, tmp_path / "nope")
