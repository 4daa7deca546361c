"""docs/notebooks/quickstart.ipynb, executed end to end in a Jupyter kernel (nbclient and
ipykernel), so the documented API cannot rot: each cell's output is checked."""


import pytest

from tests.helpers import REPO, SHARED

NOTEBOOK = REPO / 'docs' / 'notebooks' / 'quickstart.ipynb'


def _outputs(cell) -> str:
  """A cell's printed text, its display's HTML and any error, as one string."""
  parts = []
  for output in cell.get('outputs', []):
    parts.append(output.get('text', ''))
    data = output.get('data', {})
    parts += [data.get('text/html', ''), data.get('text/plain', '')]
    if output.get('output_type') == 'error':
      parts.append(f'ERROR {output["ename"]}: {output["evalue"]}')
  return '\n'.join(parts)


@pytest.mark.slow
def test_the_notebook_runs_and_every_cell_shows_what_it_says(tmp_path, monkeypatch):
  import nbclient  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('TFTRANSFER_NOTEBOOK_DIR', str(tmp_path))
  monkeypatch.setenv('TFTRANSFER_SHARED', str(SHARED))
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(notebook, timeout=900, kernel_name='python3',
                          resources={'metadata': {'path': str(NOTEBOOK.parent)}}).execute()
  cells = {cell.metadata['tags'][0]: _outputs(cell) for cell in notebook.cells
           if cell.cell_type == 'code'}
  assert not any('ERROR' in text for text in cells.values()), cells
  names = ('zigzag', 'spiral', 'diamonds', 'waves', 'hatch')
  assert '60 training and 20 validation images' in cells['data']
  assert 'selected: ' in cells['create'] and 'validation accuracy: ' in cells['create']
  # One bar per phase, with the epoch and validation accuracy, and no log lines.
  assert 'head: 100%' in cells['create'] and 'finetune: 100%' in cells['create']
  assert 'epoch=2/2' in cells['create'] and 'val_acc=' in cells['create']
  assert 'INFO' not in cells['create'] and 'Phase head' not in cells['create']
  assert cells['history'].count('val accuracy') == 4  # two head and two fine-tuning epochs
  assert "'accuracy', 'balanced_accuracy'" in cells['evaluate']
  assert 'per_class' in cells['evaluate'] and 'confusion_matrix' in cells['evaluate']
  predicted = [line.split()[0] for line in cells['predict'].splitlines() if line.strip()]
  assert len(predicted) == 3 and set(predicted) <= set(names)
  for name in ('saved_model', 'keras', 'tflite', 'labels', 'export_report'):
    assert name in cells['export']
  version = tmp_path / 'models' / '1'
  assert (version / 'saved_model.pb').is_file() and (version / 'model.tflite').is_file()
  assert cells['load_model'].strip() in names
  assert '<iframe srcdoc=' in cells['report'] and (tmp_path / 'textures' / 'report' /
                                                    'index.html').is_file()
  real = cells['real_data']
  if (SHARED / 'data' / 'hymenoptera').is_dir():
    accuracy = float(real.split('hymenoptera val accuracy:')[1].split()[0])
    assert accuracy > 0.6, real  # ants and bees, far from chance (0.5)
  else:
    assert 'skipped: no ../shared' in real
