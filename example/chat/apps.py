from django.apps import AppConfig
from django.db.models.signals import post_migrate


def create_demo_user(**kwargs):
    """Demo accounts: demo / demo (may enter the staff room), friend / friend, and admin / admin
    (staff and superuser: sees the live dashboard at /consumers/ and may use its operations)."""
    from django.contrib.auth.models import Permission, User

    user, created = User.objects.get_or_create(username="demo")
    if created:
        user.set_password("demo")
        user.save()
    user.user_permissions.add(Permission.objects.get(content_type__app_label="auth", codename="view_user"))
    # A second account without permissions, to see presence and private notices with two users.
    friend, created = User.objects.get_or_create(username="friend")
    if created:
        friend.set_password("friend")
        friend.save()
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", password="admin")


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self):
        from django.apps import apps

        # Sent for the auth app after auth's own handler has created the permissions.
        post_migrate.connect(create_demo_user, sender=apps.get_app_config("auth"))
