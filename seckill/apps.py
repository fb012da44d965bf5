from django.apps import AppConfig


class SeckillConfig(AppConfig):
    name = "seckill"
    verbose_name = "Flash sales"

    def ready(self):
        from orders import pending
        from orders.signals import order_released
        from seckill import confirming, metrics
        from seckill.services import release_order_units

        order_released.connect(release_order_units, dispatch_uid="seckill.release_order_units")
        pending.register(confirming.find)
        metrics.register()
