from django.apps import AppConfig


class BenchStrategiesConfig(AppConfig):
    name = "bench.strategies"
    label = "bench_strategies"
    verbose_name = "Benchmark strategies (make bench only)"
