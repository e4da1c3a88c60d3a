"""A user's own model, Qt-free: the three conventions, latents of any shape, the output mapping,
images in every accepted form, the one-line errors, and one thread at a time in the model."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import user_models as um  # tests/user_models.py
from vaegui.core.decoder import DECODE_CHUNK
from vaegui.core.user_images import ImagesError, user_images
from vaegui.core.user_model import ModelError, UserModel, decide_output, to_unit
from vaegui.core.user_snapshot import UserSnapshot, user_encoded


def _explored(model=None, x=None, y=None, **kw) -> UserModel:
    if x is None:
        x, y = um.images()
    return UserModel(model, user_images(x, y), **kw)


# ---- conventions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("returns", ["tuple", "list", "normal", "mu"])
def test_encode_decode_convention_gives_the_models_means_and_images(returns):
    model = um.TupleVAE(returns=returns)
    x, y = um.images()
    user = _explored(model, x, y)
    assert user.convention == "encode/decode" and user.latent_dim == 2
    with torch.no_grad():
        out = model.encode(torch.from_numpy(x))
        mu = out.mean if returns == "normal" else out if returns == "mu" else out[0]
        np.testing.assert_allclose(user.encode_all(), mu.numpy(), rtol=1e-6, atol=1e-6)
        z = np.array([[0.3, -1.2], [2.0, 0.5]], np.float32)
        expected = torch.sigmoid(model.decode(torch.from_numpy(z))).numpy()  # logits, auto
    assert user.output == "logits"
    np.testing.assert_allclose(user.decode(z), expected, rtol=1e-6, atol=1e-6)


def test_pythae_convention_reads_embedding_and_reconstruction():
    model = um.PythaeStyle(latent=3)
    x, y = um.images()
    user = _explored(model, x, y)
    assert user.convention == "pythae" and user.latent_dim == 3 and user.output == "probabilities"
    with torch.no_grad():
        mu = model.encoder(torch.from_numpy(x)).embedding.numpy()
        np.testing.assert_allclose(user.encode_all(), mu, rtol=1e-6, atol=1e-6)
        expected = model.decoder(torch.from_numpy(mu[:5]))["reconstruction"].numpy()
    np.testing.assert_allclose(user.decode(mu[:5]), expected, rtol=1e-6, atol=1e-6)


def test_two_callables_and_a_flat_decoder_output():
    encode, decode = um.callables()
    x, y = um.images()
    user = _explored(None, x, y, encode=encode, decode=decode)
    assert user.convention == "callables"
    with torch.no_grad():
        mu = encode(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(user.encode_all(), mu, rtol=1e-6, atol=1e-6)
        # decode returns (n, 64): reshaped to the images' (n, 1, 8, 8)
        expected = torch.sigmoid(decode(torch.from_numpy(mu[:4]))).reshape(4, *um.SHAPE).numpy()
    got = user.decode(mu[:4])
    assert got.shape == (4, *um.SHAPE)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_a_latent_of_shape_4_2_2_round_trips_through_flattening():
    model = um.TupleVAE(latent_shape=(4, 2, 2))
    x, y = um.images()
    user = _explored(model, x, y)
    assert user.latent_shape == (4, 2, 2) and user.latent_dim == 16
    flat = user.encode_all()
    with torch.no_grad():
        mu = model.encode(torch.from_numpy(x))[0]  # (N, 4, 2, 2)
        np.testing.assert_allclose(flat, mu.reshape(len(x), 16).numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(flat[7].reshape(4, 2, 2), mu[7].numpy(), rtol=1e-6, atol=1e-6)
        expected = torch.sigmoid(model.decode(mu[:3])).numpy()
    np.testing.assert_allclose(user.decode(flat[:3]), expected, rtol=1e-6, atol=1e-6)


# ---- outputs -------------------------------------------------------------------------------------
def test_a_tanh_model_on_signed_images_is_shown_in_0_1():
    model = um.TupleVAE(out="tanh")
    x, y = um.images(signed=True)
    user = _explored(model, x, y)
    assert user.output == "tanh" and user.images.input_range == "signed"
    z = user.encode_all()[:6]
    with torch.no_grad():
        raw = model.decode(torch.from_numpy(z)).numpy()
    shown = user.decode(z)
    assert raw.min() < -0.3  # the raw output does go below 0 ...
    assert 0.0 <= shown.min() and shown.max() <= 1.0  # ... and is shown in [0, 1]
    np.testing.assert_allclose(shown, (raw + 1) / 2, rtol=1e-6, atol=1e-6)
    # previews of [-1, 1] images are the images mapped to 0..255
    np.testing.assert_array_equal(user.images.previews, np.round((x + 1) / 2 * 255).astype(np.uint8))


def test_a_logits_model_is_shown_through_a_sigmoid_and_output_overrides_auto():
    model = um.TupleVAE(out="logits")
    user = _explored(model)
    z = user.encode_all()[:6]
    with torch.no_grad():
        raw = model.decode(torch.from_numpy(z)).numpy()
    assert raw.min() < 0 and raw.max() > 1
    np.testing.assert_allclose(user.decode(z), 1 / (1 + np.exp(-raw)), rtol=1e-5, atol=1e-6)
    forced = _explored(um.TupleVAE(out="sigmoid"), output="probabilities")
    assert forced.output == "probabilities" and "as asked" in forced.output_reason
    with pytest.raises(ModelError, match="output='nope'"):
        _explored(um.TupleVAE(), output="nope")


def test_decide_output_from_a_decoded_batch():
    assert decide_output(np.array([-4.0, 0.5, 3.0]), False)[0] == "logits"
    assert decide_output(np.array([0.0, 0.5, 1.0]), False)[0] == "probabilities"
    assert decide_output(np.array([-0.9, 0.0, 0.8]), True)[0] == "tanh"
    assert decide_output(np.array([-0.2, 0.1]), False)[0] == "logits"  # near 0 on [0, 1] images
    t = torch.tensor([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(to_unit(t, "tanh").numpy(), [0.0, 0.5, 1.0])


# ---- images --------------------------------------------------------------------------------------
def test_images_in_every_layout_and_type_become_nchw():
    x, y = um.images(n=12)
    nchw = user_images(x, y)
    for other in (x[:, 0], x.transpose(0, 2, 3, 1), torch.from_numpy(x)):
        got = user_images(other, y)
        np.testing.assert_array_equal(got.inputs.numpy(), nchw.inputs.numpy())
    u8 = (x * 255).round().astype(np.uint8)
    got = user_images(u8, y)
    assert got.input_range == "unit" and got.inputs.dtype == torch.float32
    np.testing.assert_allclose(got.inputs.numpy(), u8 / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(got.previews, u8)
    np.testing.assert_allclose(got.to_inputs(u8).numpy(), u8 / 255.0, rtol=1e-6)
    assert got.class_names == ("0", "1", "2")
    rgb = user_images(np.zeros((3, 5, 6, 3), np.uint8))
    assert rgb.image_shape == (3, 5, 6) and rgb.class_names == ("images",)


def test_a_dataset_yields_images_and_labels():
    x, y = um.images(n=9)

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return torch.from_numpy(x[i]), int(y[i])

    class Alone(Pairs):
        def __getitem__(self, i):
            return x[i]

    got = user_images(Pairs())
    np.testing.assert_array_equal(got.inputs.numpy(), x)
    np.testing.assert_array_equal(got.labels, y)
    alone = user_images(Alone(), class_names=["digits"])
    assert (alone.labels == 0).all() and alone.class_names == ("digits",)


@pytest.mark.parametrize("images, labels, needle", [
    (np.zeros((4, 2, 3, 5, 5), np.float32), None, "is not (N, C, H, W)"),
    (np.zeros((4, 1, 5, 5), np.complex64), None, "is not uint8 or float"),
    (np.full((4, 1, 5, 5), np.nan, np.float32), None, "not finite"),
    (np.zeros((4, 1, 5, 5), np.float32), [0, 1], "2 labels for 4 images"),
    (np.zeros((4, 1, 5, 5), np.float32), [0, 1, -1, 2], "class numbers"),
])
def test_bad_images_or_labels_are_one_clear_line(images, labels, needle):
    with pytest.raises(ImagesError, match=re.escape(needle)) as info:
        user_images(images, labels)
    assert "\n" not in str(info.value)


# ---- errors --------------------------------------------------------------------------------------
class _BadEncode(nn.Module):
    def encode(self, x):
        return "mu", 3

    def decode(self, z):
        return z


class _BadDecode(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 2)

    def encode(self, x):
        return self.lin(x.flatten(1))

    def decode(self, z):
        return z * 2  # (n, 2): not an image


class _Raises(_BadDecode):
    def decode(self, z):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")


@pytest.mark.parametrize("model, needles", [
    (_BadEncode(), ["model.encode(x) returned tuple(str, int)", "for x of shape (8, 1, 8, 8)",
                    "expected (mu, logvar), a torch.distributions.Normal, or mu"]),
    (_BadDecode(), ["model.decode(z) returned Tensor(8, 2) float32", "expected an image tensor of shape (8, 1, 8, 8)"]),
    (_Raises(), ["model.decode(z) raised RuntimeError: mat1 and mat2", "its argument: Tensor(8, 2)"]),
    (nn.Linear(2, 2), ["model Linear has neither encode(x) and decode(z)", "convention 2, Pythae",
                       "encode= and decode="]),
])
def test_a_model_that_does_not_fit_gets_one_line_naming_the_call(model, needles, capsys):
    with pytest.raises(ModelError) as info:
        _explored(model)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_the_users_model_is_never_called_only_its_copy():
    model = um.TupleVAE()
    model.train()
    user = _explored(model)
    assert user.module is not model and user.copied
    assert model.training  # left as the user had it; the copy is in eval mode
    assert not user.module.training
    model.fail_decode = True  # the user's model changed after: the copy is what is explored
    with um.GUARD.watch() as guard:
        user.decode(np.zeros((1, 2), np.float32))
    assert guard.entries == 1


class _SlowVAE(um.TupleVAE):
    """Stays inside the model long enough that two unserialised threads would meet there."""

    def encode(self, x):
        with um.GUARD:
            time.sleep(0.002)  # widens the race window; nothing waits on it
        return super().encode(x)

    def decode(self, z):
        with um.GUARD:
            time.sleep(0.002)
        return super().decode(z)


def test_the_model_is_never_entered_by_two_threads_at_once():
    x, y = um.images(n=200)
    user = _explored(_SlowVAE(), x, y)
    decoder = UserSnapshot(user).make_decoder()
    failures: list[BaseException] = []

    def encode():
        try:
            for _ in user.encodings(chunk=10):
                pass
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    def decode():
        try:
            for _ in range(30):
                decoder.decode(np.zeros((1, 2), np.float32))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)
    threads = [threading.Thread(target=encode), threading.Thread(target=decode), threading.Thread(target=decode)]
    with um.GUARD.watch() as guard:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures and guard.overlaps == 0
    assert guard.entries == 2 * (20 + 60)  # each call enters twice (the slow part, then the model)
    assert len(guard.threads) == 3


def test_the_decoder_the_explorer_gets_decodes_and_reconstructs():
    x, y = um.images()
    user = _explored(um.TupleVAE(), x, y)
    snapshot = UserSnapshot(user)
    decoder = snapshot.make_decoder()
    assert decoder.fits(snapshot) and not decoder.fits(UserSnapshot(_explored(um.TupleVAE(), x, y)))
    z = user.encode_all()
    many = np.repeat(z, 2, axis=0)[:DECODE_CHUNK + 5]
    chunks = decoder.decode_in_chunks(many)
    images = None
    while images is None:
        try:
            next(chunks)
        except StopIteration as stop:
            images = stop.value
    np.testing.assert_allclose(images, user.decode(many), rtol=1e-6)
    previews = user.images.previews[:3]
    np.testing.assert_allclose(decoder.reconstruct(previews),
                               user.decode(user.encode(user.images.to_inputs(previews))), rtol=1e-6)
    encoded = user_encoded(user, z)
    assert encoded.latents is z and encoded.xy.shape == (len(x), 2) and encoded.class_names == ("0", "1", "2")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_on_cuda_stays_on_its_device():
    model = um.TupleVAE().cuda()
    x, y = um.images()
    user = _explored(model, x, y)
    assert user.device.type == "cuda" and next(user.module.parameters()).is_cuda
    cpu = _explored(um.TupleVAE().cpu(), x, y)  # the same weights (seeded), on the CPU
    np.testing.assert_allclose(user.encode_all(), cpu.encode_all(), rtol=1e-4, atol=1e-5)
    z = cpu.encode_all()[:4]
    np.testing.assert_allclose(user.decode(z), cpu.decode(z), rtol=1e-4, atol=1e-5)
    assert next(model.parameters()).is_cuda  # the user's model is where it was
