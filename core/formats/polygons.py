"""Index masks as polygons and back, for the formats that only know polygons (LabelMe, YOLO).

Each connected region of a class is traced with OpenCV's two-level contour retrieval (RETR_CCOMP): one outer
boundary and the boundaries of its holes, as integer pixel coordinates (x, y). Filled together with the even-odd
rule (the hole boundaries run through the region's own pixels, and polygon filling includes the boundary), a
region's polygons give back exactly its pixels, so a polygon format can be exact when the holes travel with it.

Stated tolerance of a polygon round trip (export, then import by this package), checked by the tests on drawn
faces: at least 99.5% of the pixels of every image agree, and every class with 30 or more pixels keeps an IoU of at
least 0.95. Measured on drawn faces at 64-256 px the round trip has been exact, and with holes kept as separate
polygons (LabelMe) also on random label noise. YOLO's cuts (below) are not always exact on noise: a straight cut
from a hole to the boundary can pass diagonally by a corner of the hole and paint that hole pixel (one pixel in 11
of 3000 noise masks of 1-23 px; in 60 of 300 noise masks of 20-80 px, at most 12 pixels or 0.4%). The tolerance
leaves room for that and for polygons from other tools.

Regions are listed in descending order of the area inside their outer boundary. Anything nested in a hole of a
region has a smaller outer area, so a reader that ignores holes and simply paints polygons in file order still gets
nested parts (eyes inside skin) right. Background inside a hole is such a nested part too: `enclosed_background`
traces every background component that does not touch the image border as a region of class 0, so a polygon format
that can name background (LabelMe) gives that reader the holes back as well; YOLO, which has no background class,
keeps its holes open by cuts instead (`bridged`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MIN_POINTS = 3


@dataclass(frozen=True)
class Region:
    class_index: int
    outer: np.ndarray
    """(N, 2) int32 pixel coordinates (x, y) of the outer boundary."""
    holes: tuple[np.ndarray, ...]
    area: float
    """Area enclosed by the outer boundary, holes included; regions are painted largest first."""


def mask_regions(mask: np.ndarray, classes: Iterable[int] | None = None) -> list[Region]:
    """Every connected region of every non-background class, largest outer area first."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    wanted = [int(c) for c in (np.unique(mask) if classes is None else classes) if int(c) != 0]
    regions: list[Region] = []
    for class_index in wanted:
        regions += _traced((mask == class_index).astype(np.uint8), class_index)
    return largest_first(regions)


def enclosed_background(mask: np.ndarray) -> list[Region]:
    """Every background component that does not touch the image border, as a region of class 0 with its holes,
    largest outer area first.

    Components are 4-connected because a region's holes are (OpenCV traces regions 8-connected, so the pixels they
    enclose connect only through edges): each component then lies wholly inside one hole of every region around it
    and has a smaller outer area than that region. Background touching the border lies in no hole.
    """
    background = (np.asarray(mask) == 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    height, width = background.shape
    regions: list[Region] = []
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label, :4])
        if x == 0 or y == 0 or x + w == width or y + h == height:
            continue
        frame = (labels[y - 1:y + h + 1, x - 1:x + w + 1] == label).astype(np.uint8)
        regions += _traced(frame, 0, offset=(x - 1, y - 1))
    return largest_first(regions)


def largest_first(regions: Iterable[Region]) -> list[Region]:
    """The painting order: anything inside a hole of a region comes after that region."""
    return sorted(regions, key=lambda r: -r.area)


def _traced(binary: np.ndarray, class_index: int, offset: tuple[int, int] = (0, 0)) -> list[Region]:
    """The regions of one binary image (its 8-connected components), with their holes, in image coordinates."""
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    if hierarchy is None:
        return []
    links = hierarchy[0]
    holes: dict[int, list[np.ndarray]] = {}
    for i, link in enumerate(links):
        if link[3] >= 0:
            holes.setdefault(int(link[3]), []).append(contours[i].reshape(-1, 2))
    regions = []
    for i, link in enumerate(links):
        if link[3] < 0:
            outer = contours[i].reshape(-1, 2)
            regions.append(Region(class_index, outer, tuple(holes.get(i, ())), abs(float(cv2.contourArea(outer)))))
    return regions


def fill_polygons(canvas: np.ndarray, polygons: Sequence[np.ndarray], value: int) -> None:
    """Paint the even-odd interior of `polygons` (outer boundaries and their holes together), boundaries included."""
    pts = [np.round(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2) for p in polygons if len(p)]
    if pts:
        cv2.fillPoly(canvas, pts, int(value))


def bridged(region: Region) -> np.ndarray:
    """One polygon for a region with holes: each hole joined to the boundary by a zero-width cut at the closest
    pair of points, so a reader that fills a single polygon with the even-odd rule keeps the holes open."""
    poly = region.outer
    for hole in region.holes:
        d = ((poly[:, None, :].astype(np.int64) - hole[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        loop = np.concatenate([hole[j:], hole[: j + 1]])
        poly = np.concatenate([poly[: i + 1], loop, poly[i:]])
    return poly


def padded(points: np.ndarray) -> np.ndarray:
    """At least three points: single pixels and one-pixel lines trace to 1-2 points, which polygon readers reject
    (YOLO would even read 2 points as a box). Repeating a point changes no pixel."""
    if len(points) >= MIN_POINTS:
        return points
    return np.concatenate([points, np.repeat(points[-1:], MIN_POINTS - len(points), axis=0)])


def _as_points(polygon: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(polygon, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)


def hole_interior(shape: tuple[int, int], hole: np.ndarray) -> np.ndarray:
    """Pixels strictly inside a hole boundary: its boundary pixels belong to the region around it.

    Computed as a rectangle around the hole minus the even-odd fill of (rectangle, hole), so it agrees pixel for
    pixel with what `fill_polygons` leaves open when the hole is filled together with its outer boundary.
    """
    pts = _as_points(hole)
    x, y, w, h = cv2.boundingRect(pts)
    frame = np.array([[x - 1, y - 1], [x + w, y - 1], [x + w, y + h], [x - 1, y + h]], np.int32).reshape(-1, 1, 2)
    both = np.zeros(shape, np.uint8)
    cv2.fillPoly(both, [frame, pts], 1)
    rect = np.zeros(shape, np.uint8)
    cv2.fillPoly(rect, [frame], 1)
    return (rect > 0) & (both == 0)


def region_pixels(shape: tuple[int, int], outers: Sequence[np.ndarray], holes: Sequence[np.ndarray] = ()) -> np.ndarray:
    """The pixels of a region given as outer boundaries (united, so overlapping parts of one object add up) and
    holes (their interiors removed). For one outer boundary this equals its even-odd fill with the holes."""
    canvas = np.zeros(shape, np.uint8)
    for outer in outers:
        cv2.fillPoly(canvas, [_as_points(outer)], 1)
    pixels = canvas > 0
    for hole in holes:
        pixels &= ~hole_interior(shape, hole)
    return pixels
