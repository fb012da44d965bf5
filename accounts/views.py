"""Sign-up and log-in pages. Log-out is Django's own view (accounts/urls.py)."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import login_throttle
from core.http import client_ip


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


class LoginForm(AuthenticationForm):
    """The login form, with the failed-login lockout told plainly instead of "wrong password".

    The lock itself is enforced by the authentication backend (accounts/login_throttle.py);
    this form only checks it first, to say why, and to skip the password check.
    """

    lockout = None

    def clean(self):
        ip = client_ip(self.request)
        username = self.data.get("username")
        self.lockout = login_throttle.lockout_for(username=username, ip=ip)
        if self.lockout is None:
            try:
                return super().clean()
            except ValidationError:
                self.lockout = login_throttle.lockout_for(username=username, ip=ip)  # this failure may have locked it
                if self.lockout is None:
                    raise
        raise ValidationError(self.lockout.message, code="locked")


class LoginView(auth_views.LoginView):
    """Django's login page; a locked username or address gets a 429 with the reason."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        context = self.get_context_data(form=form, lockout=form.lockout)
        return self.render_to_response(context, status=429 if form.lockout else 200)
