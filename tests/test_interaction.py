"""Tests of openheadpose.apps.interaction and `headpose interact`: who looks at whom.

Scenes are built by hand. Convention reminders (checked in the first test): positive
AFLW yaw turns the nose to the image's LEFT, so a head on the left must have a
NEGATIVE yaw to face a head on its right; positive pitch looks up.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import needs_mediapipe_facemesh
from click.testing import CliRunner

from openheadpose.cli.interact import interact
from openheadpose.apps.interaction import DepthModel, InteractionConfig, draw_interaction, face_sizes, facing_directions, find_interactions, gaze_geometry, head_positions
from openheadpose.inference.results import Heads
from openheadpose.core.rotation import euler_to_matrix

# A big image with the heads near its centre: the rays to them are within a few degrees
# of the optical axis, so apparent and camera-frame rotations nearly agree and the
# scenes read the same in both depth models.
BIG = (4000, 3000)
CX, CY = BIG[0] / 2, BIG[1] / 2
PLANE = InteractionConfig(depth="plane")
CONFIGS = [pytest.param(InteractionConfig(), id="size"), pytest.param(PLANE, id="plane")]


def box(x: float, y: float, size: float = 100.0) -> list[float]:
    """Square face box centred on (x, y) image pixels."""
    return [x - size / 2, y - size / 2, x + size / 2, y + size / 2]


def heads(boxes, yaw, pitch=0.0, sigma=None) -> Heads:
    boxes = np.asarray(boxes, float)
    n = len(boxes)
    R = euler_to_matrix(np.broadcast_to(np.asarray(yaw, float), (n,)), np.broadcast_to(np.asarray(pitch, float), (n,)), 0.0)
    return Heads(boxes, np.ones(n), R, None if sigma is None else np.asarray(sigma, float))


def towards(gx: float, gy: float, gz: float) -> tuple[float, float]:
    """(yaw, pitch) in AFLW degrees of a head facing along (gx, gy, gz), GL axes."""
    g = np.array([gx, gy, gz], float)
    g /= np.linalg.norm(g)
    yaw, pitch = -np.degrees(np.arcsin(g[0])), np.degrees(np.arctan2(g[1], g[2]))
    assert np.allclose(euler_to_matrix(yaw, pitch, 0.0)[:, 2], g)
    return yaw, pitch


# --------------------------------------------------------------------------- conventions


def test_convention_facing_direction():
    # negative yaw: the nose points to the image's right (+x); positive pitch: up (+y, GL)
    g = facing_directions(euler_to_matrix(np.array([-90.0, 0.0, 0.0]), np.array([0.0, 90.0, 0.0]), 0.0))
    np.testing.assert_allclose(g, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], atol=1e-12)
    # roll does not move the facing direction
    np.testing.assert_allclose(facing_directions(euler_to_matrix(-30.0, 10.0, 40.0)), facing_directions(euler_to_matrix(-30.0, 10.0, 0.0)), atol=1e-12)


def test_image_y_points_down_gl_y_up():
    # a head above another (smaller image y) looking down (negative pitch) looks at it
    pos = head_positions(np.array([box(0, 0), box(0, 300)]), "plane")
    assert pos[1, 1] < pos[0, 1]  # the lower head has the smaller GL y
    geo = gaze_geometry(pos, facing_directions(euler_to_matrix(np.array([0.0, 0.0]), np.array([-90.0, 90.0]), 0.0)))
    assert geo.theta[0, 1] < 1e-6 and geo.theta[1, 0] < 1e-6  # top looks down at bottom, bottom up at top


def test_bigger_face_is_nearer_and_roll_correction():
    pos = head_positions(np.array([box(CX, CY, 100), box(CX, CY, 50)]), "size", BIG)
    assert pos[0, 2] > pos[1, 2]  # z towards the viewer: the big face is nearer
    assert np.isclose(pos[1, 2] / pos[0, 2], 2.0)  # half the size, twice as far
    # a face 87 x 100 px (FaceMesh's aspect) rolled by 45 deg has an upright box of
    # 0.707 * (87 + 100) px a side; its size is corrected back to 100
    side = np.sqrt(0.5) * (87 + 100)
    assert np.isclose(face_sizes(np.array([[0, 0, 87, 100.0]]), euler_to_matrix(0.0, 0.0, 0.0)[None])[0], 100.0)
    assert np.isclose(face_sizes(np.array([[0, 0, side, side]]), euler_to_matrix(0.0, 0.0, 45.0)[None])[0], 100.0)
    assert np.isclose(face_sizes(np.array([[0, 0, side, side]]))[0], side / 0.87)  # no rotation: no correction
    with pytest.raises(ValueError, match="image_size"):
        find_interactions(heads([box(0, 0), box(200, 0)], 0.0), None)


# --------------------------------------------------------------------------- scenes


@pytest.mark.parametrize("config", CONFIGS)
def test_facing_each_other_is_mutual(config):
    h = heads([box(CX - 200, CY), box(CX + 200, CY)], [-70.0, 70.0])  # left turns right, right turns left
    inter = find_interactions(h, BIG, config)
    (p,) = inter.pairs
    assert (p.a, p.b) == (0, 1)
    assert p.a_looks_at_b and p.b_looks_at_a and p.mutual
    assert p.score > 0.8 and inter.mutual_pairs == [(0, 1)]
    assert [g.members for g in inter.groups] == [(0, 1)]
    assert abs(p.distance - 400 / (100 / 0.87)) < 0.05  # 400 px apart; a square 100 px box is a face 115 px tall


@pytest.mark.parametrize("config", CONFIGS)
def test_back_to_back_is_no_interaction(config):
    h = heads([box(CX - 200, CY), box(CX + 200, CY)], [70.0, -70.0])  # left turns left, right turns right
    inter = find_interactions(h, BIG, config)
    (p,) = inter.pairs
    assert not (p.a_looks_at_b or p.b_looks_at_a or p.mutual)
    assert p.score < 0.01 and p.theta_ab > 150 and p.theta_ba > 150
    assert inter.groups == ()


@pytest.mark.parametrize("config", CONFIGS)
def test_one_looks_the_other_faces_the_camera(config):
    h = heads([box(CX - 200, CY), box(CX + 200, CY)], [-75.0, 0.0])
    inter = find_interactions(h, BIG, config)
    (p,) = inter.pairs
    assert p.a_looks_at_b and not p.b_looks_at_a and not p.mutual
    assert p.look_ab > 0.75 and p.look_ba < 0.02
    assert 0.35 < p.score < 0.5
    assert inter.camera[1] > 0.99 and inter.camera[0] < 0.05


def test_facing_the_camera_looks_at_nobody_even_at_a_nearer_head():
    """A posed photo (the geometry of media/multi_face.jpg's two left faces): the person
    behind (higher, smaller face) faces the camera; the one in front of them (bigger
    face, lower right) lies 19 deg off that face's axis in 3D. The camera fits better
    and wins: nobody looks at anybody."""
    h = heads([box(260, 124, 88), box(363, 301, 113)], [-9.0, -8.0], [-8.0, -5.0])
    inter = find_interactions(h, (1000, 667))
    assert inter.cone_look[0, 1] > 0.6  # geometrically the front head IS inside the cone...
    assert inter.camera[0] > inter.cone_look[0, 1]  # ...but the camera is nearer the axis
    assert inter.look[0, 1] < 0.5 and not any(p.a_looks_at_b or p.b_looks_at_a for p in inter.pairs)
    # exactly on the line of sight the two are equally good targets: the look is halved
    h = heads([box(CX, CY - 150, 80), box(CX + 40, CY + 60, 110)], [0.0, 0.0], [-8.0, 0.0])
    inter = find_interactions(h, BIG)
    assert inter.cone_look[0, 1] > 0.99 and inter.camera[0] > 0.95 and inter.look[0, 1] < 0.52


def test_depth_from_face_size_finds_a_look_towards_a_nearer_head():
    """A far head (small) turned towards a near one (big): in 3D the line between them
    leaves the image plane by ~47 deg. The size model sees the look; the plane model,
    which puts both at one depth, does not."""
    W = 1000
    boxes = [box(W / 2 - 200, 300, 60), box(W / 2 + 200, 300, 100)]
    pos = head_positions(np.array(boxes), "size", (W, 600))
    d = pos[1] - pos[0]
    assert 40 < np.degrees(np.arctan2(d[2], np.hypot(d[0], d[1]))) < 55
    yaw, pitch = towards(*d)
    h = heads(boxes, [yaw, 0.0], [pitch, 0.0])
    size = find_interactions(h, (W, 600), InteractionConfig(apparent_rotations=False))
    plane = find_interactions(h, (W, 600), PLANE)
    assert size.pairs[0].a_looks_at_b and size.pairs[0].theta_ab < 1e-6
    assert not plane.pairs[0].a_looks_at_b


def test_larger_sigma_widens_the_cone():
    # a borderline look: the left head faces to the right but 40 deg up (off the cone)
    boxes = [box(CX - 200, CY), box(CX + 200, CY)]
    yaw, pitch = towards(np.cos(np.radians(40)), np.sin(np.radians(40)), 0.05)
    scores, cones = [], []
    for s in (None, 5.0, 10.0, 20.0, 40.0, 60.0):
        sigma = None if s is None else [[s, s, 3.0], [2.0, 2.0, 2.0]]
        inter = find_interactions(heads(boxes, [yaw, 0.0], [pitch, 0.0], sigma), BIG, PLANE)
        scores.append(inter.pairs[0].look_ab)
        cones.append(inter.cone_deg[0])
    assert 0.2 < scores[0] < 0.5  # outside the cone without sigma ...
    assert scores[-1] > 0.5  # ... inside it when the pose is uncertain
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    assert all(b > a for a, b in zip(cones, cones[1:])) and cones[0] == 30.0
    assert cones[-1] == 60.0  # capped at max_cone_deg
    # sigma of zero is no sigma; roll's sigma does not matter
    z = find_interactions(heads(boxes, [yaw, 0.0], [pitch, 0.0], [[0, 0, 30.0], [0, 0, 0]]), BIG, PLANE)
    assert np.isclose(z.pairs[0].look_ab, scores[0])


def test_pair_scores_are_symmetric_and_follow_the_heads_order():
    rng = np.random.default_rng(7)
    n = 7
    centres = rng.uniform(500, 3500, size=(n, 2))
    sizes = rng.uniform(80, 160, size=n)
    boxes = np.array([box(x, y, s) for (x, y), s in zip(centres, sizes)])
    h = heads(boxes, rng.uniform(-90, 90, n), rng.uniform(-40, 40, n), rng.uniform(1, 15, (n, 3)))
    for config in (InteractionConfig(), PLANE):
        inter = find_interactions(h, BIG, config)
        assert len(inter.pairs) == n * (n - 1) // 2
        assert [(p.a, p.b) for p in inter.pairs] == [(a, b) for a in range(n) for b in range(a + 1, n)]
        np.testing.assert_allclose(inter.scores, inter.scores.T)
        assert np.all(np.diag(inter.look) == 0) and np.all((inter.look >= 0) & (inter.look <= 1))
        for p in inter.pairs:
            assert inter.pair(p.b, p.a) is p
            assert np.isclose(p.score, (p.look_ab + p.look_ba) / 2) and np.isclose(p.score, inter.scores[p.a, p.b])
            assert p.mutual == (p.a_looks_at_b and p.b_looks_at_a)
            assert p.a_looks_at_b == (p.look_ab >= 0.5)
        # reordering the heads permutes the results and changes nothing else
        perm = rng.permutation(n)
        again = find_interactions(h[perm], BIG, config)
        np.testing.assert_allclose(again.look, inter.look[np.ix_(perm, perm)], atol=1e-12)
        assert sorted(tuple(sorted(perm[list(g.members)])) for g in again.groups) == sorted(g.members for g in inter.groups)


def test_group_of_three_and_a_bystander():
    """A and B look at each other, C (above them) looks down at A; D faces the camera."""
    A, B, C, D = (CX - 200, CY), (CX + 200, CY), (CX - 50, CY - 300), (CX + 250, CY + 700)
    yaw_c, pitch_c = towards(A[0] - C[0], -(A[1] - C[1]), 0.4 * np.hypot(A[0] - C[0], A[1] - C[1]))
    h = heads([box(*A), box(*B), box(*C), box(*D)], [-70.0, 70.0, yaw_c, 5.0], [0.0, 0.0, pitch_c, 0.0])
    for config in (InteractionConfig(), PLANE):
        inter = find_interactions(h, BIG, config)
        assert inter.mutual_pairs == [(0, 1)]
        assert inter.pair(0, 2).b_looks_at_a and not inter.pair(0, 2).a_looks_at_b  # C -> A only
        assert not any(p.a_looks_at_b or p.b_looks_at_a for p in inter.pairs if 3 in (p.a, p.b))
        (g,) = inter.groups
        assert g.members == (0, 1, 2)
        expected = np.mean([inter.pair(0, 1).score, inter.pair(0, 2).score, inter.pair(1, 2).score])
        assert np.isclose(g.score, expected) and 0.3 < g.score < 0.7
        d = inter.to_dict()
        assert d["groups"] == [{"members": [0, 1, 2], "score": round(g.score, 4)}]
        assert set(d["pairs"][0]) >= {"a", "b", "a_looks_at_b", "b_looks_at_a", "mutual", "score"}
        json.dumps(d)  # plain JSON types


def test_no_heads_and_one_head():
    img = np.full((60, 80, 3), 90, np.uint8)
    for h in (Heads.empty(), heads([box(CX, CY)], 0.0)):
        inter = find_interactions(h, BIG)
        assert inter.pairs == () and inter.groups == () and inter.to_dict()["pairs"] == []
        assert draw_interaction(img, h, inter).shape == img.shape


def test_config_is_validated():
    assert InteractionConfig(depth="plane").depth is DepthModel.PLANE
    with pytest.raises(ValueError):
        InteractionConfig(depth="sideways")
    with pytest.raises(ValueError):
        InteractionConfig(cone_deg=70.0)
    with pytest.raises(ValueError):
        InteractionConfig(depth_sigma_deg=-1.0)


def test_draw_interaction_returns_a_changed_copy():
    img = np.random.default_rng(0).integers(60, 200, size=(300, 500, 3), dtype=np.uint8)
    before = img.copy()
    h = heads([box(120, 150, 60), box(380, 150, 60), box(250, 260, 40)], [-70.0, 70.0, 0.0])
    inter = find_interactions(h, (500, 300))
    out = draw_interaction(img, h, inter)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.shares_memory(out, img)
    np.testing.assert_array_equal(img, before)
    mid = out[150 - 3 : 150 + 4, 220:280]  # the link between the mutual pair crosses here
    assert np.any(np.all(np.abs(mid.astype(int) - (40, 255, 80)) < 40, axis=-1)), "no green mutual link"
    no_cones = draw_interaction(img, h, inter, show_cones=False)
    assert np.any(no_cones != out)
    with pytest.raises(ValueError):
        draw_interaction(img, h[:2], inter)


# --------------------------------------------------------------------------- end to end


@needs_mediapipe_facemesh
@pytest.mark.parametrize("pose", ["hopenet-synth", "fsanet-synth", "geometric"])
def test_cli_interact_group_photo(media, tmp_path, pose):
    """Six people around a poker table (media/group-t1.jpg). Heads are numbered left to
    right: 0 Rachel (left, looking down at her cards, face to the camera), 1 Monica
    (behind her, head turned down towards her), 2 Ross, 3 Chandler, 4 Joey (standing at
    the back, turned down-left towards Ross), 5 Phoebe (right, face to the camera).

    Run with each pose stage: the reading of the photo must not hang on one network.
    Whether Monica's cone holds Rachel is not asserted: her look score at Rachel was 0.69
    (geometric), 0.54 (fsanet-synth), 0.52, 0.46 and 0.44 (hopenet-synth 68s, 68t, 68v):
    her face points 10-24 degrees from Rachel, on the cone's edge once the camera's
    competition is counted, and the stages differ there by less than her sigma (4-5
    degrees). What they all agree on is asserted: her face points nearest to Rachel, nearer
    than to anyone else by 15 degrees or more (three times her sigma; measured 20.7, 29.8
    and 38.6 with hopenet-synth 68v, fsanet-synth and geometric).
    """
    out = tmp_path / "pairs.jsonl"
    r = CliRunner().invoke(interact, [str(media / "group-t1.jpg"), "--pose", pose, "--json", str(out), "--save", str(tmp_path / "vis"), "-q"])
    assert r.exit_code == 0, r.output + (r.stderr or "")
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rec) == {"source", "frame", "width", "height", "heads", "pairs", "groups", "camera"}
    assert (rec["width"], rec["height"], rec["frame"]) == (1280, 886, 0)
    assert len(rec["heads"]) == 6 and len(rec["pairs"]) == 15 and len(rec["camera"]) == 6
    for p in rec["pairs"]:
        assert {"a", "b", "a_looks_at_b", "b_looks_at_a", "mutual", "score"} <= set(p)
        assert 0 <= p["a"] < p["b"] < 6 and 0 <= p["score"] <= 1
        assert p["mutual"] == (p["a_looks_at_b"] and p["b_looks_at_a"])
    looks = {(p["a"], p["b"]) for p in rec["pairs"] if p["a_looks_at_b"]} | {(p["b"], p["a"]) for p in rec["pairs"] if p["b_looks_at_a"]}
    assert (4, 2) in looks, looks  # Joey -> Ross: score 0.87-0.89 with every stage (0.5 decides)
    assert not any(5 in ab for ab in looks)  # Phoebe looks at her cards; nobody looks at her
    assert not any(p["mutual"] for p in rec["pairs"])  # nobody meets anybody's eyes here
    assert rec["camera"][0] > 0.9  # Rachel's face is turned to the camera
    # Monica (1): the angle between her facing and the way to each other head, and her look scores
    theta = {p["b"] if p["a"] == 1 else p["a"]: p["theta_ab"] if p["a"] == 1 else p["theta_ba"] for p in rec["pairs"] if 1 in (p["a"], p["b"])}
    score = {p["b"] if p["a"] == 1 else p["a"]: p["look_ab"] if p["a"] == 1 else p["look_ba"] for p in rec["pairs"] if 1 in (p["a"], p["b"])}
    assert min(theta, key=theta.get) == 0 and sorted(theta.values())[1] - theta[0] >= 15, theta
    assert max(score, key=score.get) == 0, score
    # Joey (4) looks at Ross and towards Rachel beyond him: his look scores rank Ross, then Rachel,
    # above everybody else. (Whether the pair Joey-Rachel reaches the group threshold, 0.25, is on
    # the edge: 0.30-0.35 with the axis-aligned crops, 0.24 with hopenet-synth's upright read, whose
    # look score at Rachel is 0.47 at 29 degrees; so that is not asserted, as Monica's cone is not.)
    joey = {p["b"] if p["a"] == 4 else p["a"]: p["look_ab"] if p["a"] == 4 else p["look_ba"] for p in rec["pairs"] if 4 in (p["a"], p["b"])}
    assert sorted(joey, key=joey.get, reverse=True)[:2] == [2, 0], joey
    assert [p.name for p in (tmp_path / "vis").iterdir()] == ["group-t1.jpg"]


def test_cli_interact_exit_codes_and_stdout(media, tmp_path):
    runner = CliRunner()
    r = runner.invoke(interact, [str(tmp_path / "missing.jpg"), "-q"])
    assert r.exit_code == 2 and "missing.jpg" in r.stderr
    (tmp_path / "empty.jpg").write_bytes(b"")
    r = runner.invoke(interact, [str(media / "single_face.jpg"), str(tmp_path / "empty.jpg"), "--json", "-", "-q"])
    assert r.exit_code == 1 and "empty.jpg" in r.stderr
    (rec,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rec["heads"]) == 1 and rec["pairs"] == [] and rec["groups"] == []
    r = runner.invoke(interact, ["example:astronaut", "--detector", "blazefase", "-q"])
    assert r.exit_code == 2 and "blazeface" in r.stderr
