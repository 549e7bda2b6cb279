"""A saved graph's random draws follow map_location (jit.load): traced with cuda draws and loaded on
the cpu they draw on the cpu, traced on the cpu and loaded on cuda they draw on the device; explicit
device moves in the traced code are left as written."""
import numpy as np
import pytest

import jitorch as torch

if not torch.cuda.is_available():
    pytest.skip("cuda is not available (no GPU and NUMBA_ENABLE_CUDASIM is not set)", allow_module_level=True)


class Noisy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        noise = torch.rand(400, device=x.device)          # an input-less draw on the input's device
        keep = torch.nn.functional.dropout(x, 0.5, True)  # a draw shaped like x
        return self.fc(x), noise, keep


def _check(outs, device, x):
    y, noise, keep = outs
    assert y.device.type == device and noise.device.type == device and keep.device.type == device
    u = noise.cpu().numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.1   # uniform(0, 1): mean 0.5, sd 0.014
    k = keep.cpu().numpy()
    xs = x.cpu().numpy()
    assert np.all((k == 0) | np.isclose(k, 2 * xs))                      # dropout's 0 or x / (1 - p)


@pytest.mark.parametrize("traced_on,loaded_on", [("cuda", "cpu"), ("cpu", "cuda"), ("cuda", "cuda"), ("cpu", "cpu")])
def test_draws_follow_map_location(tmp_path, traced_on, loaded_on):
    torch.manual_seed(0)
    m = Noisy().to(traced_on)
    xh = np.random.default_rng(1).standard_normal((8, 6)).astype(np.float32)
    tr = torch.jit.trace(m, (torch.tensor(xh, device=traced_on),), check_trace=False)
    path = tmp_path / "noisy.jt"
    tr.save(path)
    loaded = torch.jit.load(path, map_location=loaded_on)
    x = torch.tensor(xh, device=loaded_on)
    outs = loaded(x)
    _check(outs, loaded_on, x)
    with torch.no_grad():
        want = m.to(loaded_on)(x)[0]
    np.testing.assert_allclose(outs[0].detach().cpu().numpy(), want.cpu().numpy(), rtol=1e-5, atol=1e-6)
    second = loaded(x)[1].cpu().numpy()
    assert not np.array_equal(second, outs[1].cpu().numpy()), "a replayed graph draws fresh numbers"
