import sys, time, tempfile; sys.path.insert(0, "/work/main")
import numpy as np, torch
from torch import nn
from torch.nn import functional as F
from pipeline.data import speech, cochlea, spoken
from pipeline.data.frames import to_frames
from pipeline.data.events import make_events
torch.set_num_threads(2)
variant = sys.argv[1]
def frames_for(split, c, n_rep, adapt, bins=50):
    rng = np.random.default_rng([0, 0 if split == "train" else 1])
    # design choices are made on validation speakers held out of the training speakers, never the test speakers
    spk = speech.TRAIN_SPEAKERS[:-4] if split == "train" else speech.TRAIN_SPEAKERS[-4:]
    plan = speech.plan(spk, n_rep, rng)
    X, Y = [], []
    for u in plan:
        w = speech.synthesise(u, rng)
        t, un = c(w) if adapt is None else adapt(c, w)
        ev = make_events(un, np.zeros_like(un), np.rint(t * 1e6).astype(np.int64), np.zeros_like(un))
        X.append(to_frames(ev, bins, 1_000_000, (c.channels,))); Y.append(u.label)
    return np.stack(X), np.array(Y)
def adapted(tau, floor, theta):
    def run(c, x):
        from scipy import signal
        hop = int(round(c.step_s * c.fs)); n = len(x) // hop
        y = np.stack([signal.lfilter(b, a, x) for b, a in cochlea._filters(c)])
        env = np.maximum(y[:, :n*hop], 0).reshape(c.channels, n, hop).mean(axis=2)
        D = (env / c.ref) ** 0.3
        A = signal.lfilter([c.step_s / tau], [1, -(1 - c.step_s / tau)], D, axis=1)
        drive = np.maximum(D - A - floor, 0)
        cr = np.floor(np.cumsum(drive, axis=1) / theta)
        sp = np.diff(cr, axis=1, prepend=0).astype(np.int64)
        u, s = np.nonzero(sp); reps = sp[u, s]; u, s = np.repeat(u, reps), np.repeat(s, reps)
        o = np.argsort(s, kind="stable"); return (s[o] + 0.5) * c.step_s, u[o]
    return run
c = cochlea.Cochlea()
if variant == "base":
    ad = None
else:
    tau, floor, theta = map(float, variant.split(","))
    ad = adapted(tau, floor, theta)
t0 = time.time()
X, Y = frames_for("train", c, 6, ad); Xt, Yt = frames_for("test", c, 4, ad)
print("sim", time.time() - t0, "density", (X > 0).mean(), "events/sample", X.sum((1,2)).mean())
x = torch.from_numpy(X).float().clamp(max=1); y = torch.from_numpy(Y); xt = torch.from_numpy(Xt).float().clamp(max=1); yt = torch.from_numpy(Yt)
torch.manual_seed(0)
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.g = nn.GRU(64, 128, batch_first=True); s.o = nn.Linear(128, 20)
    def forward(s, x):
        h, _ = s.g(x); return s.o(h[:, -1])
m = M(); opt = torch.optim.Adam(m.parameters(), 3e-3)
for ep in range(20):
    perm = torch.randperm(len(y))
    for b in range(0, len(y), 64):
        i = perm[b:b+64]; loss = F.cross_entropy(m(x[i]), y[i]); opt.zero_grad(); loss.backward(); opt.step()
with torch.no_grad():
    print(variant, "validation acc (held-out training speakers)", (m(xt).argmax(1) == yt).float().mean().item())
