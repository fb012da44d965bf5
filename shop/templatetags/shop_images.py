"""`{% product_image product sizes big %}`: a product's picture with srcset, or a placeholder.

The placeholder is the product's initial on a tinted tile (no request, nothing to
fail), so a product without an image still looks deliberate.
"""

from django import template
from django.utils.html import format_html, format_html_join

from shop import images

register = template.Library()

CARD_SIZES = "(max-width: 520px) calc(100vw - 2rem), (max-width: 1080px) 45vw, 250px"
BIG_SIZES = "(max-width: 700px) calc(100vw - 3rem), 460px"


@register.simple_tag
def product_image(product, big=False, lazy=True):
    css = "thumb big" if big else "thumb"
    if not product.image:
        return format_html('<div class="{} placeholder" aria-hidden="true">{}</div>', css, product.name[:1])
    srcset = format_html_join(", ", "{} {}w", product.image_srcset)
    width = images.DEFAULT_WIDTH
    return format_html(
        '<img class="{} photo" src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}"{}>',
        css,
        product.image_url,
        srcset,
        BIG_SIZES if big else CARD_SIZES,
        width,
        images.variant_height(width),
        product.name,
        format_html(' loading="lazy" decoding="async"') if lazy else "",
    )
