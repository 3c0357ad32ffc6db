"""Writes dlordinal_reference.json: dlordinal 2.7's outputs for test_heads.py.

Run once, in an environment with PyTorch and dlordinal (never dependencies of
this project):

    python -m venv /tmp/ref
    /tmp/ref/bin/pip install torch==2.13.0 numpy scipy deprecated
    /tmp/ref/bin/pip install --no-deps dlordinal==2.7.0
    /tmp/ref/bin/python tests/data/make_dlordinal_reference.py
"""

import json
import pathlib

import dlordinal
import numpy as np
import torch
from dlordinal import soft_labelling
from dlordinal.losses import SLACELoss
from dlordinal.output_layers import CLM, COPOC, BinomialLayer, PoissonLayer

assert dlordinal.__version__ == '2.7.0', dlordinal.__version__
torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(0)
out = {'dlordinal_version': dlordinal.__version__, 'soft_labels': [],
       'clm': [], 'binomial': [], 'poisson': [], 'slace': []}

for k in (5, 10):
  for family, params in [('exponential', {}),
                         ('exponential', {'p': 2.0, 'tau': 0.5}),
                         ('binomial', {}), ('poisson', {}), ('beta', {}),
                         ('triangular', {}), ('triangular', {'alpha2': 0.05}),
                         ('geometric', {}), ('geometric', {'alpha': 0.3})]:
    dl_params = {'alpha': 'alphas'}
    fn = getattr(soft_labelling, f'get_{family}_soft_labels')
    matrix = fn(k, **{dl_params.get(n, n): v for n, v in params.items()})
    out['soft_labels'].append({'family': family, 'num_classes': k,
                               'params': params,
                               'matrix': np.asarray(matrix).tolist()})

k = 10
projected = rng.normal(0, 2, 16)
for link in ('logit', 'probit', 'cloglog'):
  layer = CLM(k, link)
  with torch.no_grad():
    layer.thresholds_b_[:] = torch.tensor([-2.0])
    layer.thresholds_a_[:] = torch.tensor(rng.uniform(0.3, 1.0, k - 2))
  thresholds = layer._convert_thresholds(layer.thresholds_b_,
                                         layer.thresholds_a_, 0.0)
  probs = layer(torch.tensor(projected))
  out['clm'].append({'link': link, 'projected': projected.tolist(),
                     'thresholds': thresholds.detach().numpy().tolist(),
                     'probs': probs.detach().numpy().tolist()})

score = rng.normal(0, 2, 16)
layer = BinomialLayer(in_features=1, num_classes=k)
with torch.no_grad():
  layer.p_layer.weight[:] = 1.0
  layer.p_layer.bias[:] = 0.0
probs = layer(torch.tensor(score)[:, None])
out['binomial'].append({'score': score.tolist(),
                        'probs': probs.detach().numpy().tolist()})

for tau in (1.0, 0.6):
  layer = PoissonLayer(in_features=1, num_classes=k)
  with torch.no_grad():
    layer.lambda_layer.weight[:] = 1.0
    layer.lambda_layer.bias[:] = 0.0
    layer.log_tau.fill_(np.log(tau))
  probs = layer(torch.tensor(score)[:, None])
  out['poisson'].append({'score': score.tolist(), 'temperature': tau,
                         'probs': probs.detach().numpy().tolist()})

logits = rng.normal(0, 3, (16, k))
labels = rng.integers(0, k, 16)
for alpha in (1.0, 2.5):
  loss_fn = SLACELoss(alpha=alpha, num_classes=k)
  per_example = [float(loss_fn(torch.tensor(z[None]), torch.tensor([y])))
                 for z, y in zip(logits, labels, strict=True)]
  out['slace'].append({'alpha': alpha, 'logits': logits.tolist(),
                       'labels': labels.tolist(), 'loss': per_example})

# Its own generator, so that the blocks above keep their values.
eta = np.random.default_rng(1).normal(0, 2, (16, k))
with torch.no_grad():
  probs = torch.softmax(COPOC()(torch.tensor(eta)), dim=1)
out['copoc'] = [{'outputs': eta.tolist(), 'probs': probs.numpy().tolist()}]

path = pathlib.Path(__file__).with_name('dlordinal_reference.json')
path.write_text(json.dumps(out) + '\n')
print(f'wrote {path} ({path.stat().st_size} bytes)')
