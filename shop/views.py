from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from shop import selectors
from shop.errors import NotFound


def product_list(request):
    return render(request, "shop/product_list.html", {"products": selectors.product_list_on_sale()})


def product_detail(request, slug):
    try:
        product = selectors.product_get_on_sale(slug=slug)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    return render(request, "shop/product_detail.html", {"product": product})


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("/")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}! Your account is ready.")
        next_url = request.GET.get("next", "")
        if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            return redirect(next_url)
        return redirect("/")
    return render(request, "registration/signup.html", {"form": form})
