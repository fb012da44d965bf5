"""Pictures for the demo catalogue, drawn with Pillow: no download, no binary in the repository.

Each product gets a 1200x900 JPEG: a two-colour gradient, a few soft shapes and the
product's name, in a palette picked by its position in the catalogue.
"""

import io

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH, HEIGHT = 1200, 900
PALETTES = [
    ((122, 28, 36), (236, 145, 92)),
    ((25, 42, 86), (88, 166, 255)),
    ((20, 20, 28), (120, 120, 150)),
    ((70, 40, 20), (214, 160, 96)),
    ((18, 78, 60), (120, 200, 140)),
    ((48, 48, 52), (200, 90, 60)),
]


def _gradient(top, bottom):
    image = Image.new("RGB", (WIDTH, HEIGHT), top)
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT):
        t = y / (HEIGHT - 1)
        draw.line([(0, y), (WIDTH, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return image


def draw_product_image(name, index=0):
    """JPEG bytes of a picture for `name`."""
    top, bottom = PALETTES[index % len(PALETTES)]
    image = _gradient(top, bottom)
    shapes = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse([720, -160, 1360, 480], fill=(255, 255, 255, 46))
    draw.ellipse([-220, 520, 420, 1160], fill=(255, 255, 255, 30))
    draw.rounded_rectangle([380, 210, 820, 650], radius=80, fill=(255, 255, 255, 220))
    shapes = shapes.filter(ImageFilter.GaussianBlur(2))
    image.paste(shapes, (0, 0), shapes)
    draw = ImageDraw.Draw(image)
    initial = ImageFont.load_default(size=300)
    draw.text((600, 430), name[:1].upper(), font=initial, fill=top, anchor="mm")
    label = ImageFont.load_default(size=64)
    draw.text((600, 780), name, font=label, fill=(255, 255, 255), anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, optimize=True)
    return buffer.getvalue()
