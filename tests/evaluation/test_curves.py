"""Training curves: the phase boundary is found, and rows without images/sec still plot."""

from tftransfer.evaluation import curves


def _row(phase, epoch, images_per_sec=100.0):
  return {'phase': phase, 'epoch': epoch, 'train_loss': 1.0 / epoch, 'val_loss': 1.2 / epoch,
          'train_accuracy': 0.1 * epoch, 'val_accuracy': 0.1 * epoch, 'learning_rate': 1e-3,
          'images_per_sec': images_per_sec}


def test_phase_boundaries_and_the_plot():
  rows = [_row('head', 1), _row('head', 2), _row('finetune', 1, None), _row('finetune', 2)]
  assert curves.phase_boundaries(rows) == [(2.5, 'finetune')]
  assert curves.phase_boundaries(rows[:2]) == []
  figure = curves.plot_training_curves(rows)
  panels = figure.get_axes()
  assert len(panels) == 4
  loss_lines = panels[0].get_lines()
  assert [line.get_label() for line in loss_lines[:2]] == ['train loss', 'validation loss']
  assert list(loss_lines[0].get_ydata()) == [1.0, 0.5, 1.0, 0.5]
  # The boundary is drawn on every panel, between the second and third epoch.
  for axes in panels:
    assert any(list(line.get_xdata()) == [2.5, 2.5] for line in axes.get_lines())


def test_a_partial_epoch_says_so_on_its_tick():
  # A run capped by max_steps inside head epoch 2: its last row is partial.
  rows = [_row('head', 1), {**_row('head', 2), 'partial': True}]
  panels = curves.plot_training_curves(rows).get_axes()
  assert [tick.get_text() for tick in panels[3].get_xticklabels()] == ['h1', 'h2 partial']
