r"""Time, peak memory and recall of the audit's nearest-neighbour search, exact and approximate.

  python scripts/measure_search.py --sizes=10000,50000,200000,1000000 --exact_up_to=200000

Synthetic embeddings (unit rows around 100 directions, spread like pooled CNN features, of
--dim features; 1 % of the rows planted as near copies of others, at cosine about 0.998,
and 1 % as exact copies), searched for config.audit.neighbours neighbours by
auditing/search.py. For each size, in its own process (so its peak resident memory is its
own): the exact search's time (sizes up to --exact_up_to), the approximate (FAISS HNSW)
search's time and the process's peak resident memory until it ended, and, where both ran, the approximate search's recall of the exact
neighbours (on a sample of 5,000 rows) and of the near-duplicate pairs (cosine >= 0.95 among
the exact neighbours, the audit's backbone threshold); and the planted copies found as
nearest neighbours. Without the exact search, recall is of the exact neighbours of 2,000
sampled rows (brute force on those rows alone). Prints a table; --out writes it as JSON.
"""

import json
import resource
import subprocess
import sys
import time

from absl import app, flags
import numpy as np

flags.DEFINE_list('sizes', ['10000', '50000', '200000', '1000000'], 'Embeddings per search.')
flags.DEFINE_integer('exact_up_to', 200000, 'Largest size the exact search is timed at.')
flags.DEFINE_integer('dim', 256, 'Features per embedding (MobileNet-0.25: 256; thumbnails: 64).')
flags.DEFINE_integer('neighbours', 10, 'Neighbours per row (config.audit.neighbours).')
flags.DEFINE_string('out', '', 'Optional JSON file for the table.')
flags.DEFINE_integer('one', 0, 'Internal: measure this one size and print its row as JSON.')
FLAGS = flags.FLAGS

NEAR_PAIR_SIMILARITY = 0.95  # config.audit.near_duplicate_similarity


def embeddings(count: int, dim: int, seed: int = 0):
  """(float32 [count, dim] unit rows, int [C] planted copies, int [C] their originals)."""
  from tftransfer.auditing import search  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(100, dim)).astype(np.float32)
  rows = centres[rng.integers(0, 100, count)]
  rows += 0.7 * rng.normal(size=(count, dim)).astype(np.float32)
  copies = count // 100
  order = rng.permutation(count)
  near, near_of = order[:copies], order[copies:2 * copies]
  exact, exact_of = order[2 * copies:3 * copies], order[3 * copies:4 * copies]
  rows[near] = rows[near_of] + 0.03 * rng.normal(size=(copies, dim)).astype(np.float32)
  rows[exact] = rows[exact_of]
  return (search.normalise(rows), np.concatenate([near, exact]),
          np.concatenate([near_of, exact_of]))


def _near_pairs(indices, similarities):
  rows = np.repeat(np.arange(len(indices)), indices.shape[1])
  keep = similarities.reshape(-1) >= NEAR_PAIR_SIMILARITY
  pairs = np.stack([rows[keep], indices.reshape(-1)[keep]], axis=1)
  return {(min(a, b), max(a, b)) for a, b in pairs.tolist()}


def measure(count: int, dim: int, k: int, exact: bool) -> dict:
  """One size's row of the table (run in a fresh process)."""
  from tftransfer.auditing import search  # pylint: disable=import-outside-toplevel
  rows, planted, originals = embeddings(count, dim)
  result = {'size': count, 'dim': dim, 'embeddings_mb': round(rows.nbytes / 2**20)}
  started = time.time()
  approximate, approximate_similarity = search.nearest_neighbours(rows, k, exact_max=0)
  result['approximate_seconds'] = round(time.time() - started, 1)
  # The process's peak so far: making the embeddings (float64 noise) and the search.
  result['approximate_peak_mb'] = round(
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
  result['planted_copies_found'] = round(float(np.mean(
      [originals[i] in approximate[planted[i]] for i in range(len(planted))])), 4)
  sample = np.random.default_rng(1).choice(count, min(count, 5000 if exact else 2000),
                                           replace=False)
  if exact:
    started = time.time()
    truth, truth_similarity = search.nearest_neighbours(rows, k)
    result['exact_seconds'] = round(time.time() - started, 1)
    wanted = _near_pairs(truth, truth_similarity)
    found = _near_pairs(approximate, approximate_similarity)
    result['near_pair_recall'] = round(len(wanted & found) / max(len(wanted), 1), 4)
    result['near_pairs'] = len(wanted)
    truth = truth[sample]
  else:
    truth = []
    for start in range(0, len(sample), 250):  # 250 x 1,000,000 scores: 1 GB at a time
      chunk = sample[start:start + 250]
      scores = rows[chunk] @ rows.T
      scores[np.arange(len(chunk)), chunk] = -2
      truth.append(np.argpartition(-scores, k, axis=1)[:, :k])
    truth = np.concatenate(truth)
  result['neighbour_recall'] = round(float(np.mean(
      [len(set(a) & set(t)) / k for a, t in zip(approximate[sample], truth)])), 4)
  return result


def main(argv):
  del argv
  if FLAGS.one:
    print(json.dumps(measure(FLAGS.one, FLAGS.dim, FLAGS.neighbours,
                             FLAGS.one <= FLAGS.exact_up_to)))
    return
  table = []
  print('size       exact s  approx s  peak MB (data MB)  neighbour recall  '
        'near-pair recall  copies found', flush=True)
  for size in map(int, FLAGS.sizes):
    done = subprocess.run(
        [sys.executable, __file__, f'--one={size}', f'--dim={FLAGS.dim}',
         f'--neighbours={FLAGS.neighbours}', f'--exact_up_to={FLAGS.exact_up_to}'],
        capture_output=True, text=True, check=False)
    if done.returncode:
      raise SystemExit(f'The search of {size:,} embeddings failed:\n{done.stderr[-3000:]}')
    row = json.loads(done.stdout.strip().splitlines()[-1])
    table.append(row)
    print(f"{size:<10,} {row.get('exact_seconds', '-'):>7}  {row['approximate_seconds']:>8}  "
          f"{row['approximate_peak_mb']:>7} ({row['embeddings_mb']:>5})  "
          f"{row['neighbour_recall']:>16}  "
          f"{row.get('near_pair_recall', '-'):>16}  {row['planted_copies_found']:>12}",
          flush=True)
  if FLAGS.out:
    with open(FLAGS.out, 'w') as file:
      json.dump(table, file, indent=1)


if __name__ == '__main__':
  app.run(main)
