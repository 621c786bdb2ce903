"""The SDK's client classes as a type checker should see them: every resource property typed.

python-intercom 5.0.1 declares its resource properties without return annotations
(``def contacts(self):``), so under ``mypy --strict`` ``Intercom(...).contacts.find(...)`` is
``Any`` and a typo in a method or argument name goes unnoticed. The facades derive from the
classes below, which re-declare each property with the SDK's own client class as its type.

The declarations exist for type checkers only: at run time ``TypedIntercom`` *is*
``intercom.Intercom`` (and ``TypedAsyncIntercom`` ``intercom.AsyncIntercom``), so not one
attribute lookup changes. ``tests/typing/test_typed_results.py`` fails when the SDK gains a
resource that is not declared here, or when a declared type differs from what the SDK returns.
Retire this module when python-intercom annotates its properties itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom import AsyncIntercom, Intercom

__all__ = ["TypedAsyncIntercom", "TypedIntercom"]

if TYPE_CHECKING:
    from intercom.admins.client import AdminsClient, AsyncAdminsClient
    from intercom.ai_content.client import AiContentClient, AsyncAiContentClient
    from intercom.articles.client import ArticlesClient, AsyncArticlesClient
    from intercom.away_status_reasons.client import (
        AsyncAwayStatusReasonsClient,
        AwayStatusReasonsClient,
    )
    from intercom.calls.client import AsyncCallsClient, CallsClient
    from intercom.companies.client import AsyncCompaniesClient, CompaniesClient
    from intercom.contacts.client import AsyncContactsClient, ContactsClient
    from intercom.conversations.client import AsyncConversationsClient, ConversationsClient
    from intercom.custom_channel_events.client import (
        AsyncCustomChannelEventsClient,
        CustomChannelEventsClient,
    )
    from intercom.custom_object_instances.client import (
        AsyncCustomObjectInstancesClient,
        CustomObjectInstancesClient,
    )
    from intercom.data_attributes.client import AsyncDataAttributesClient, DataAttributesClient
    from intercom.data_export.client import AsyncDataExportClient, DataExportClient
    from intercom.events.client import AsyncEventsClient, EventsClient
    from intercom.export.client import AsyncExportClient, ExportClient
    from intercom.help_centers.client import AsyncHelpCentersClient, HelpCentersClient
    from intercom.internal_articles.client import (
        AsyncInternalArticlesClient,
        InternalArticlesClient,
    )
    from intercom.ip_allowlist.client import AsyncIpAllowlistClient, IpAllowlistClient
    from intercom.jobs.client import AsyncJobsClient, JobsClient
    from intercom.messages.client import AsyncMessagesClient, MessagesClient
    from intercom.news.client import AsyncNewsClient, NewsClient
    from intercom.notes.client import AsyncNotesClient, NotesClient
    from intercom.phone_call_redirects.client import (
        AsyncPhoneCallRedirectsClient,
        PhoneCallRedirectsClient,
    )
    from intercom.segments.client import AsyncSegmentsClient, SegmentsClient
    from intercom.subscription_types.client import (
        AsyncSubscriptionTypesClient,
        SubscriptionTypesClient,
    )
    from intercom.tags.client import AsyncTagsClient, TagsClient
    from intercom.teams.client import AsyncTeamsClient, TeamsClient
    from intercom.ticket_states.client import AsyncTicketStatesClient, TicketStatesClient
    from intercom.ticket_types.client import AsyncTicketTypesClient, TicketTypesClient
    from intercom.tickets.client import AsyncTicketsClient, TicketsClient
    from intercom.unstable.client import AsyncUnstableClient, UnstableClient
    from intercom.visitors.client import AsyncVisitorsClient, VisitorsClient

    class TypedIntercom(Intercom):
        """``intercom.Intercom`` with typed resource properties."""

        @property
        def admins(self) -> AdminsClient:
            """The SDK's ``admins`` namespace."""

        @property
        def ai_content(self) -> AiContentClient:
            """The SDK's ``ai_content`` namespace."""

        @property
        def articles(self) -> ArticlesClient:
            """The SDK's ``articles`` namespace."""

        @property
        def away_status_reasons(self) -> AwayStatusReasonsClient:
            """The SDK's ``away_status_reasons`` namespace."""

        @property
        def export(self) -> ExportClient:
            """The SDK's ``export`` namespace."""

        @property
        def data_export(self) -> DataExportClient:
            """The SDK's ``data_export`` namespace."""

        @property
        def help_centers(self) -> HelpCentersClient:
            """The SDK's ``help_centers`` namespace."""

        @property
        def internal_articles(self) -> InternalArticlesClient:
            """The SDK's ``internal_articles`` namespace."""

        @property
        def ip_allowlist(self) -> IpAllowlistClient:
            """The SDK's ``ip_allowlist`` namespace."""

        @property
        def companies(self) -> CompaniesClient:
            """The SDK's ``companies`` namespace."""

        @property
        def contacts(self) -> ContactsClient:
            """The SDK's ``contacts`` namespace."""

        @property
        def notes(self) -> NotesClient:
            """The SDK's ``notes`` namespace."""

        @property
        def tags(self) -> TagsClient:
            """The SDK's ``tags`` namespace."""

        @property
        def conversations(self) -> ConversationsClient:
            """The SDK's ``conversations`` namespace."""

        @property
        def custom_channel_events(self) -> CustomChannelEventsClient:
            """The SDK's ``custom_channel_events`` namespace."""

        @property
        def custom_object_instances(self) -> CustomObjectInstancesClient:
            """The SDK's ``custom_object_instances`` namespace."""

        @property
        def data_attributes(self) -> DataAttributesClient:
            """The SDK's ``data_attributes`` namespace."""

        @property
        def events(self) -> EventsClient:
            """The SDK's ``events`` namespace."""

        @property
        def jobs(self) -> JobsClient:
            """The SDK's ``jobs`` namespace."""

        @property
        def messages(self) -> MessagesClient:
            """The SDK's ``messages`` namespace."""

        @property
        def segments(self) -> SegmentsClient:
            """The SDK's ``segments`` namespace."""

        @property
        def subscription_types(self) -> SubscriptionTypesClient:
            """The SDK's ``subscription_types`` namespace."""

        @property
        def phone_call_redirects(self) -> PhoneCallRedirectsClient:
            """The SDK's ``phone_call_redirects`` namespace."""

        @property
        def calls(self) -> CallsClient:
            """The SDK's ``calls`` namespace."""

        @property
        def teams(self) -> TeamsClient:
            """The SDK's ``teams`` namespace."""

        @property
        def ticket_states(self) -> TicketStatesClient:
            """The SDK's ``ticket_states`` namespace."""

        @property
        def ticket_types(self) -> TicketTypesClient:
            """The SDK's ``ticket_types`` namespace."""

        @property
        def tickets(self) -> TicketsClient:
            """The SDK's ``tickets`` namespace."""

        @property
        def visitors(self) -> VisitorsClient:
            """The SDK's ``visitors`` namespace."""

        @property
        def news(self) -> NewsClient:
            """The SDK's ``news`` namespace."""

        @property
        def unstable(self) -> UnstableClient:
            """The SDK's ``unstable`` namespace."""

    class TypedAsyncIntercom(AsyncIntercom):
        """``intercom.AsyncIntercom`` with typed resource properties."""

        @property
        def admins(self) -> AsyncAdminsClient:
            """The SDK's ``admins`` namespace."""

        @property
        def ai_content(self) -> AsyncAiContentClient:
            """The SDK's ``ai_content`` namespace."""

        @property
        def articles(self) -> AsyncArticlesClient:
            """The SDK's ``articles`` namespace."""

        @property
        def away_status_reasons(self) -> AsyncAwayStatusReasonsClient:
            """The SDK's ``away_status_reasons`` namespace."""

        @property
        def export(self) -> AsyncExportClient:
            """The SDK's ``export`` namespace."""

        @property
        def data_export(self) -> AsyncDataExportClient:
            """The SDK's ``data_export`` namespace."""

        @property
        def help_centers(self) -> AsyncHelpCentersClient:
            """The SDK's ``help_centers`` namespace."""

        @property
        def internal_articles(self) -> AsyncInternalArticlesClient:
            """The SDK's ``internal_articles`` namespace."""

        @property
        def ip_allowlist(self) -> AsyncIpAllowlistClient:
            """The SDK's ``ip_allowlist`` namespace."""

        @property
        def companies(self) -> AsyncCompaniesClient:
            """The SDK's ``companies`` namespace."""

        @property
        def contacts(self) -> AsyncContactsClient:
            """The SDK's ``contacts`` namespace."""

        @property
        def notes(self) -> AsyncNotesClient:
            """The SDK's ``notes`` namespace."""

        @property
        def tags(self) -> AsyncTagsClient:
            """The SDK's ``tags`` namespace."""

        @property
        def conversations(self) -> AsyncConversationsClient:
            """The SDK's ``conversations`` namespace."""

        @property
        def custom_channel_events(self) -> AsyncCustomChannelEventsClient:
            """The SDK's ``custom_channel_events`` namespace."""

        @property
        def custom_object_instances(self) -> AsyncCustomObjectInstancesClient:
            """The SDK's ``custom_object_instances`` namespace."""

        @property
        def data_attributes(self) -> AsyncDataAttributesClient:
            """The SDK's ``data_attributes`` namespace."""

        @property
        def events(self) -> AsyncEventsClient:
            """The SDK's ``events`` namespace."""

        @property
        def jobs(self) -> AsyncJobsClient:
            """The SDK's ``jobs`` namespace."""

        @property
        def messages(self) -> AsyncMessagesClient:
            """The SDK's ``messages`` namespace."""

        @property
        def segments(self) -> AsyncSegmentsClient:
            """The SDK's ``segments`` namespace."""

        @property
        def subscription_types(self) -> AsyncSubscriptionTypesClient:
            """The SDK's ``subscription_types`` namespace."""

        @property
        def phone_call_redirects(self) -> AsyncPhoneCallRedirectsClient:
            """The SDK's ``phone_call_redirects`` namespace."""

        @property
        def calls(self) -> AsyncCallsClient:
            """The SDK's ``calls`` namespace."""

        @property
        def teams(self) -> AsyncTeamsClient:
            """The SDK's ``teams`` namespace."""

        @property
        def ticket_states(self) -> AsyncTicketStatesClient:
            """The SDK's ``ticket_states`` namespace."""

        @property
        def ticket_types(self) -> AsyncTicketTypesClient:
            """The SDK's ``ticket_types`` namespace."""

        @property
        def tickets(self) -> AsyncTicketsClient:
            """The SDK's ``tickets`` namespace."""

        @property
        def visitors(self) -> AsyncVisitorsClient:
            """The SDK's ``visitors`` namespace."""

        @property
        def news(self) -> AsyncNewsClient:
            """The SDK's ``news`` namespace."""

        @property
        def unstable(self) -> AsyncUnstableClient:
            """The SDK's ``unstable`` namespace."""

else:
    TypedIntercom = Intercom
    TypedAsyncIntercom = AsyncIntercom
