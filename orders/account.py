"""The customer's account page: their details, a link to change the password, their orders.

It lives in the orders app because it lists orders, and apps below orders (accounts,
shop) may not import them (pyproject.toml, [tool.importlinter]). The details form
edits only the customer's own name and e-mail: the fields are listed, so a posted
`is_staff` or `username` is ignored, and an invalid form changes nothing.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from orders import selectors

RECENT_ORDERS = 5


class AccountDetailsForm(forms.ModelForm):
    class Meta:
        model = get_user_model()
        fields = ("first_name", "last_name", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].help_text = "Order confirmations and password resets go here."


@login_required
@require_http_methods(["GET", "POST"])
def account(request):
    form = AccountDetailsForm(request.POST or None, instance=request.user)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Your details were saved.")
            return redirect("account")
        request.user.refresh_from_db()  # the header shows the saved name, not the refused one
    orders = selectors.order_list_for_user(user=request.user)
    context = {"form": form, "orders": orders[:RECENT_ORDERS], "order_count": orders.count()}
    return render(request, "orders/account.html", context, status=400 if form.errors else 200)
