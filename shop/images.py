"""Product images: the uploaded original plus resized copies for `srcset`.

Every image is cropped to 4:3 and saved at VARIANT_WIDTHS next to the original
(products/<name>-<width>w.jpg), so a phone downloads the 320 px copy and a wide
screen the 960 px one. The widths are fixed, so a page lists them without touching
the disk. Pillow decodes uploads with its decompression-bomb guard on, and the admin
form refuses files that are not images or are larger than MAX_UPLOAD_BYTES.
"""

import io
import os

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

VARIANT_WIDTHS = (320, 640, 960)
DEFAULT_WIDTH = 640
ASPECT = (4, 3)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def validate_upload_size(file):
    if file.size > MAX_UPLOAD_BYTES:
        raise ValidationError(f"An image may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")


def variant_name(name, width):
    stem, _ = os.path.splitext(name)
    return f"{stem}-{width}w.jpg"


def variant_height(width):
    return width * ASPECT[1] // ASPECT[0]


def make_variants(name, storage=default_storage):
    """Write the resized copies of the stored image `name`, replacing older ones."""
    with storage.open(name, "rb") as fh:
        original = Image.open(fh)
        original.load()
    original = ImageOps.exif_transpose(original).convert("RGB")
    for width in VARIANT_WIDTHS:
        copy = ImageOps.fit(original, (width, variant_height(width)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        copy.save(buffer, "JPEG", quality=82, optimize=True, progressive=True)
        target = variant_name(name, width)
        if storage.exists(target):
            storage.delete(target)
        storage.save(target, ContentFile(buffer.getvalue()))


def variants_missing(name, storage=default_storage):
    return not storage.exists(variant_name(name, VARIANT_WIDTHS[-1]))


def url_of(name, width, storage=default_storage):
    return storage.url(variant_name(name, width))


def srcset(name, storage=default_storage):
    """[(url, width), ...] of the copies of `name`, smallest first."""
    return [(storage.url(variant_name(name, w)), w) for w in VARIANT_WIDTHS]
