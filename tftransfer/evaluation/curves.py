"""Training curves from a run's metrics.jsonl rows (training/reporting.py writes them): loss,
accuracy, learning rate and images/sec per epoch across both phases, the boundary marked."""

from matplotlib.figure import Figure
import numpy as np


def phase_boundaries(rows: list[dict]) -> list[tuple[float, str]]:
  """(x, name of the phase that starts there) where consecutive rows change phase; x is
  halfway between the two epochs' positions (1-based row positions)."""
  return [(index + 0.5, row['phase']) for index, row in enumerate(rows[1:], start=1)
          if row['phase'] != rows[index - 1]['phase']]


def plot_training_curves(rows: list[dict]) -> Figure:
  """Four panels over the epochs of both phases, in the order they ran: train and validation
  loss; train and validation accuracy (multi-label: exact match, and the validation mean
  average precision); learning rate; training images/sec (log scale: the head phase on
  cached features runs orders of magnitude faster than fine-tuning).

  Args:
    rows: metrics.jsonl rows, each with phase, epoch, train_loss, val_loss, train_accuracy,
      val_accuracy, learning_rate and images_per_sec (None when unmeasured), and 'partial'
      for an epoch the run's step cap stopped inside.
  """
  x = np.arange(1, len(rows) + 1)
  # A partial epoch (the run capped inside it; only ever the last row) says so on its tick.
  labels = [f'{row["phase"][0]}{row["epoch"]}' + (' partial' if row.get('partial') else '')
            for row in rows]

  def series(key):
    return np.asarray([np.nan if row.get(key) is None else row[key] for row in rows], float)

  figure = Figure(figsize=(11, 6.2), dpi=90, layout='constrained')
  panels = figure.subplots(2, 2, sharex=True).ravel()
  multi_label = any('val_map' in row for row in rows)
  scores = (('exact match, and mean average precision',
             ('train_accuracy', 'val_accuracy', 'val_map')) if multi_label else
            ('accuracy', ('train_accuracy', 'val_accuracy')))
  names = {'val_map': 'validation mAP', 'train_accuracy': 'train exact match',
           'val_accuracy': 'validation exact match'} if multi_label else {}
  for axes, (title, keys) in zip(panels[:2], (('loss', ('train_loss', 'val_loss')), scores)):
    for key in keys:
      axes.plot(x, series(key), marker='o', markersize=3,
                label=names.get(key, key.replace('_', ' ').replace('val', 'validation')))
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
  panels[2].plot(x, series('learning_rate'), marker='o', markersize=3, color='#d65f5f')
  panels[2].set_title('learning rate at the epoch end', fontsize=10)
  panels[3].plot(x, series('images_per_sec'), marker='o', markersize=3, color='#956cb4')
  panels[3].set_yscale('log')
  panels[3].set_title('training images/sec', fontsize=10)
  step = max(1, len(rows) // 16)
  for axes in panels:
    axes.grid(alpha=0.3)
    for boundary, phase in phase_boundaries(rows):
      axes.axvline(boundary, color='black', linestyle=':', linewidth=1)
      axes.annotate(f'{phase} starts', (boundary, 1), xycoords=('data', 'axes fraction'),
                    xytext=(3, -12), textcoords='offset points', fontsize=7)
    axes.set_xticks(x[::step], labels[::step], fontsize=7)
  for axes in panels[2:]:
    axes.set_xlabel('epoch (h = head phase, f = fine-tune phase)', fontsize=8)
  return figure
