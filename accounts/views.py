"""Sign-up, log-in and log-out pages, and the password pages around Django's own views.

Password reset is Django's (accounts/urls.py): its token is single-use and expires
(PASSWORD_RESET_TIMEOUT), and the "e-mail sent" page reads the same whether or not an
account has that address, so the form cannot be used to find out who has an account.
"""

from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import lockout as login_lockout
from core.http import client_ip

# Password-reset e-mails one address, or one client address, may ask for per hour.
RESETS_PER_EMAIL = 3
RESETS_PER_IP = 20
RESET_WINDOW_SECONDS = 3600


class SignUpForm(UserCreationForm):
    """Username, e-mail and password; the e-mail is required: order confirmations and
    password resets go there."""

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].help_text = "For order confirmations and password resets."


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


class LockoutMessageMixin:
    """A login form that says plainly when the failed-login lockout refused it.

    The lock itself is enforced by django-axes' backend inside `authenticate()`
    (accounts/lockout.py), which refuses a locked username or address before the
    password is checked; after a refusal this form asks whether a lock is why, and
    says so (and for how long) instead of "wrong password".
    """

    lockout = None

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            self.lockout = login_lockout.lockout_for(self.request, self.data.get("username"))
            if self.lockout is None:
                raise
        raise ValidationError(self.lockout.message, code="locked")


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    """The shop's login form."""


class LoginView(auth_views.LoginView):
    """Django's login page; a locked username or address gets a 429 with the reason."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        context = self.get_context_data(form=form, lockout=form.lockout)
        return self.render_to_response(context, status=429 if form.lockout else 200)


class LogoutView(auth_views.LogoutView):
    """Log-out by POST only, as Django requires (a link or a prefetch cannot log anyone out).

    A GET shows a page asking to confirm instead of a bare 405; the POST logs out and
    says so. The message is added after the session is flushed, into the new one.
    """

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect("/")
        return render(request, "registration/logged_out_confirm.html")

    def post(self, request, *args, **kwargs):
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.info(request, "You have logged out. See you soon!")
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change (old password checked, validators run, session kept);
    back on the account page with a message."""

    success_url = reverse_lazy("account")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password was changed.")
        return response


class ThrottledPasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, with a cap on e-mails per address and per client address.

    Each accepted request sends an e-mail, so without a cap the form could be used to
    flood somebody's inbox. Refused requests send nothing and say so; the cap is the
    same whether or not the address has an account, so it reveals nothing.
    """

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        ip = client_ip(getattr(self, "request", None)) or "unknown"
        for key, limit in ((f"pwreset:email:{email}", RESETS_PER_EMAIL), (f"pwreset:ip:{ip}", RESETS_PER_IP)):
            cache.add(key, 0, timeout=RESET_WINDOW_SECONDS)
            if cache.incr(key) > limit:
                raise ValidationError(
                    "Too many reset requests for this address; please try again in an hour.", code="throttled"
                )
        return email


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.request = self.request
        return form
