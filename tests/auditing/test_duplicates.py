"""Near-duplicate groups: every two members are a near pair (no chaining)."""

from tftransfer.auditing import duplicates

_THRESHOLDS = {'backbone': 0.9, 'pixels': 0.9}


def _pairs(*edges, similarity=0.99):
  return {(min(a, b), max(a, b)): {'backbone': similarity} for a, b in edges}


def test_a_chain_of_resemblances_is_not_one_group():
  # 0-1-2-3-4: each image resembles only its neighbours in the chain, as textures do.
  # Union-find would give one group of 5; complete linkage gives no group with a pair of
  # members that are not near each other.
  chain = _pairs((0, 1), (1, 2), (2, 3), (3, 4))
  groups = duplicates.near_groups(chain, _THRESHOLDS)
  for group in groups:
    for i in group:
      for j in group:
        assert i == j or (min(i, j), max(i, j)) in chain
  assert max(len(group) for group in groups) == 2


def test_three_copies_of_one_photo_form_one_group():
  triangle = _pairs((3, 7), (3, 9), (7, 9))
  assert duplicates.near_groups(triangle, _THRESHOLDS) == [[3, 7, 9]]


def test_the_most_similar_pair_wins_an_image_two_groups_want():
  # 1 is near both 0 and 2, but 0 and 2 are not near each other; 1 joins its closer copy,
  # closer by the margin over each signal's threshold (pixels' 0.96 is past backbone's 0.98).
  pairs = {(0, 1): {'backbone': 0.98, 'pixels': 0.5}, (1, 2): {'backbone': 0.8, 'pixels': 0.96},
           (5, 6): {'pixels': 0.97}}
  thresholds = {'backbone': 0.95, 'pixels': 0.8}
  assert duplicates.near_groups(pairs, thresholds) == [[1, 2], [5, 6]]
