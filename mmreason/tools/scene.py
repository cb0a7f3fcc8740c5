"""3D tools over the sample's point clouds: render a view, and render only the points inside a 3D box.

Coordinates are the scene frame of `mmreason.modalities.point_cloud` (axis-aligned, metres, z up: the
frame ``boxes_3d`` use). Named viewpoints look at the centre of the cloud's bounding box from a distance
at which the whole box fits the field of view:

- ``front`` from the -y side, ``back`` from +y, ``left`` from -x, ``right`` from +x, each raised by the
  env's ``view_elevation`` (30 degrees);
- ``top`` straight down from +z, with +y pointing up in the picture and +x to the right (a map view).

A given camera is ``position`` (metres) looking at ``look_at`` (default: the centre). Rendering is the
point splatting of `mmreason.modalities.point_render` (deterministic, CPU, no display); each view keeps
its camera in ``info`` so a pixel can be mapped back to a 3D point.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmreason.tools.env import Observation, ToolEnv, ToolInputError, as_choice, as_numbers, tool

VIEWS = ("front", "back", "left", "right", "top")
_AZIMUTH = {"front": -90.0, "back": 90.0, "left": 180.0, "right": 0.0}  # degrees from +x, counter-clockwise


def _named_camera(env: ToolEnv, view: str, lo: np.ndarray, hi: np.ndarray) -> Any:
    from mmreason.modalities.point_render import Camera

    s = env.settings
    center = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    dist = radius / math.sin(math.radians(s.view_fov) / 2)
    if view == "top":
        eye = center + np.array([0.0, 0.0, dist])
        return Camera.look_at(eye, center, width=s.view_size, height=s.view_size, fov=s.view_fov, up=(0.0, 1.0, 0.0))
    az, el = math.radians(_AZIMUTH[view]), math.radians(s.view_elevation)
    eye = center + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return Camera.look_at(eye, center, width=s.view_size, height=s.view_size, fov=s.view_fov)


def _given_camera(env: ToolEnv, position: Any, look_at: Any, center: np.ndarray) -> Any:
    from mmreason.modalities.point_render import Camera

    s = env.settings
    eye = np.array(as_numbers(position, "position", 3, "[x, y, z]"))
    target = center if look_at is None else np.array(as_numbers(look_at, "look_at", 3, "[x, y, z]"))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-6:
        raise ToolInputError("position and look_at must be different points")
    # Looking straight up or down: z cannot be the picture's up direction, +y is.
    up = (0.0, 1.0, 0.0) if abs(forward[2]) > 0.999 * np.linalg.norm(forward) else (0.0, 0.0, 1.0)
    return Camera.look_at(eye, target, width=s.view_size, height=s.view_size, fov=s.view_fov, up=up)


def _camera_for(env: ToolEnv, view: Any, position: Any, look_at: Any, lo: np.ndarray,
                hi: np.ndarray) -> tuple[Any, str]:
    if position is not None:
        if view is not None:
            raise ToolInputError("give either view or position, not both")
        camera = _given_camera(env, position, look_at, (lo + hi) / 2)
        where = "from [" + ", ".join(f"{v:.2f}" for v in camera.position) + "]"
        return camera, where
    if look_at is not None:
        raise ToolInputError("look_at needs a position")
    name = as_choice("front" if view is None else view, "view", VIEWS)
    return _named_camera(env, name, lo, hi), f"from the {name}"


@tool
def render_view(env: ToolEnv, view: str | None = None, position: list[float] | None = None,
                look_at: list[float] | None = None, cloud_index: int = 0) -> Observation:
    """Render the 3D scene from a named viewpoint or from a camera position you choose.

    Args:
        view: A named viewpoint: front, back, left, right or top (default front).
        position: Camera position [x, y, z] in metres, instead of a named view.
        look_at: Point [x, y, z] in metres the camera looks at (default: the centre of the scene).
        cloud_index: Which input point cloud, counting from 0 (default 0).
    """
    from mmreason.modalities.point_render import render_camera

    index, cloud = env.pick(env.clouds, cloud_index, "point cloud")
    xyz = cloud.scene_xyz()
    camera, where = _camera_for(env, view, position, look_at, xyz.min(0), xyz.max(0))
    picture = env.picture(render_camera(cloud, camera)[0])
    return Observation(f"The scene {where}.", images=(picture,),
                       info={"tool": "render_view", "cloud_index": index, "camera": camera.as_dict()})


@tool
def crop_region(env: ToolEnv, bbox_3d: list[float], view: str | None = None, cloud_index: int = 0) -> Observation:
    """Render only the points inside a 3D box, seen close up from a named viewpoint.

    Args:
        bbox_3d: The box as [x1, y1, z1, x2, y2, z2] in metres, the minimum corner then the maximum corner.
        view: A named viewpoint: front, back, left, right or top (default front).
        cloud_index: Which input point cloud, counting from 0 (default 0).
    """
    from mmreason.modalities.point_render import point_colors, render_camera

    index, cloud = env.pick(env.clouds, cloud_index, "point cloud")
    box = np.array(as_numbers(bbox_3d, "bbox_3d", 6, "[x1, y1, z1, x2, y2, z2]"))
    if not (box[:3] < box[3:]).all():
        raise ToolInputError("bbox_3d needs x1 < x2, y1 < y2 and z1 < z2 (minimum corner first)")
    xyz = cloud.scene_xyz()
    inside = (xyz >= box[:3]).all(1) & (xyz <= box[3:]).all(1)
    count = int(inside.sum())
    if count == 0:
        lo, hi = xyz.min(0), xyz.max(0)
        raise ToolInputError("no points inside bbox_3d; the scene spans [" + ", ".join(
            f"{v:.2f}" for v in (*lo, *hi)) + "]")
    points = xyz[inside]
    camera, where = _camera_for(env, view, None, None, points.min(0), points.max(0))
    picture = env.picture(render_camera((points, point_colors(xyz, cloud.rgb)[inside]), camera)[0])
    return Observation(f"{count} points inside the box, {where}.", images=(picture,),
                       info={"tool": "crop_region", "cloud_index": index, "num_points": count,
                             "camera": camera.as_dict()})
