"""The projection's tables (SQLAlchemy Core). The migrations create exactly these; a component
test compares the migrated database with this metadata so that the two cannot drift apart.

No foreign keys: the topics arrive in any interleaving (a score before the opportunity it
scores), and every writer upserts a stub row instead of depending on another topic's order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Sequence,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

TS = DateTime(timezone=True)
EMPTY_ARRAY = text("'{}'::text[]")

# A new row's first change_seq; every change then sets it from its transaction's id
# (repository.REFRESH_OPPORTUNITIES), whose order readers can trust without a lock.
change_seq = Sequence("opportunity_change_seq", metadata=metadata)

accounts = Table(
    "accounts", metadata,
    Column("account_id", Text, primary_key=True),
    Column("name", Text),
    Column("domains", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("owner", Text),
    # The account reference of the latest event (event time, then event id) wins.
    Column("ref_at", TS),
    Column("ref_event_id", Text),
    Column("first_seen_at", TS),
    Column("last_activity_at", TS),
)
Index("ix_accounts_domains", accounts.c.domains, postgresql_using="gin")

contacts = Table(
    "contacts", metadata,
    Column("person_id", Text, primary_key=True),
    Column("account_id", Text),
    Column("email", Text),
    Column("name", Text),
    Column("job_title", Text),
    Column("department", Text),
    Column("role", Text),
    Column("role_source", Text),
    Column("ref_at", TS),
    Column("ref_event_id", Text),
    Column("first_seen_at", TS),
    Column("last_activity_at", TS),
)
Index("ix_contacts_account", contacts.c.account_id)
Index("ix_contacts_first_seen", contacts.c.first_seen_at)

opportunities = Table(
    "opportunities", metadata,
    Column("opportunity_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("solution", Text, nullable=False),
    # From the opportunity events: the highest version applied (0 for a stub row).
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("last_event_id", Text),
    Column("origin", Text),
    Column("expected_roles", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("required_roles", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("created_at", TS),
    # From the scores: the latest (version, as_of) wins.
    Column("score", Float),
    Column("tier", Text),
    Column("score_version", Integer),
    Column("score_as_of", TS),
    Column("breakdown", JSONB),
    # The lifecycle as of the latest score: scoring's record, corrected by late touches.
    Column("score_status", Text),
    Column("score_formed_at", TS),
    Column("score_stalled_since", TS),
    # The funnel stage (bg.crm-stage.v1 and v2): the latest (changed_at, event id) wins.
    Column("stage", Text, nullable=False, server_default=text("'target_base'")),
    Column("outcome", Text, nullable=False, server_default=text("'open'")),
    Column("stage_changed_at", TS),
    Column("stage_event_id", Text),
    Column("stage_author", Text),  # rules, person or crm
    Column("crm_stage", Text),  # the CRM's own name of the stage, when a CRM set it
    # The deal's terms, from people or the CRM: the latest (deal_at, event id) wins.
    Column("amount", Float),
    Column("currency", Text),
    Column("expected_close_on", Date),
    Column("deal_at", TS),
    Column("deal_event_id", Text),
    # Derived from the rows above and the member, touch and signal tables after each batch.
    Column("status", Text, nullable=False, server_default=text("'forming'")),
    Column("formed_at", TS),
    Column("first_touch_at", TS),
    Column("last_activity_at", TS),
    Column("members_count", Integer, nullable=False, server_default=text("0")),
    Column("engaged_members", Integer, nullable=False, server_default=text("0")),
    Column("touches_count", Integer, nullable=False, server_default=text("0")),
    Column("departments", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("covered_roles", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("missing_roles", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    # The seller's team {role: person}, from opportunity_team.
    Column("team", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # The qualification rules' view of the current stage (qualification.evaluate): each exit
    # criterion with whether it holds and since when, and the move proposed to a person.
    Column("criteria", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("proposed_stage", Text),
    Column("missing_criteria", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("change_seq", BigInteger, nullable=False, server_default=change_seq.next_value()),
    # Its account was merged into another (opportunity_merged): the opportunity it lives on in,
    # None when standing alone (again); merge_version: the event that said so (a guard).
    Column("merged_into", Text),
    Column("merge_version", Integer),
)
Index("ix_opportunities_account", opportunities.c.account_id)
Index("ix_opportunities_merged_into", opportunities.c.merged_into)
Index("ix_opportunities_change_seq", opportunities.c.change_seq, unique=True)
Index("ix_opportunities_score", opportunities.c.score.desc().nulls_last())
Index("ix_opportunities_created", opportunities.c.created_at)

opportunity_members = Table(
    "opportunity_members", metadata,
    Column("opportunity_id", Text, primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("email", Text),
    Column("name", Text),
    Column("job_title", Text),
    Column("department", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("role_source", Text, nullable=False),
    # Why the person is here, in this role (MemberRef.why: account, solution, role bases).
    Column("why", JSONB),
    Column("version", Integer, nullable=False),
    Column("joined_at", TS, nullable=False),
    Column("touches_count", Integer, nullable=False, server_default=text("0")),
    Column("first_touch_at", TS),
    Column("last_touch_at", TS),
    Column("engagement", Float),
)
Index("ix_members_person", opportunity_members.c.person_id)

touches = Table(
    "touches", metadata,
    # The opportunity id, or "account:<account_id>" for a touch that shows no solution: one
    # touch may count for several opportunities, but only once for each.
    Column("scope", Text, primary_key=True),
    Column("touch_id", Text, primary_key=True),
    Column("opportunity_id", Text),
    Column("account_id", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("source", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("url", Text),
    Column("title", Text),
    Column("asset_id", Text),
    Column("topic", Text),
)
Index("ix_touches_opportunity", touches.c.opportunity_id, touches.c.occurred_at)
Index("ix_touches_account", touches.c.account_id, touches.c.occurred_at)
Index("ix_touches_person", touches.c.person_id)
Index("ix_touches_occurred", touches.c.occurred_at)

signals = Table(
    "signals", metadata,
    Column("signal_id", Text, primary_key=True),
    Column("opportunity_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("solution", Text, nullable=False),
    Column("signal", Text, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("score", Float, nullable=False),
    Column("tier", Text, nullable=False),
    Column("members", JSONB, nullable=False),
    Column("covered_roles", ARRAY(Text), nullable=False),
    Column("missing_roles", ARRAY(Text), nullable=False),
    Column("trigger_event_ids", ARRAY(Text), nullable=False),
    Column("breakdown", JSONB),
    Column("detail", JSONB, nullable=False),
)
Index("ix_signals_opportunity", signals.c.opportunity_id, signals.c.occurred_at)

score_history = Table(
    "score_history", metadata,
    Column("opportunity_id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("as_of", TS, primary_key=True),
    Column("score", Float, nullable=False),
    Column("tier", Text, nullable=False),
    Column("breakdown", JSONB, nullable=False),
)

stage_changes = Table(
    "stage_changes", metadata,
    Column("event_id", Text, primary_key=True),
    Column("opportunity_id", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("amount", Float),
    Column("currency", Text),
    Column("changed_at", TS, nullable=False),
    Column("source", Text, nullable=False),
    Column("from_stage", Text),
    Column("crm_stage", Text),
    Column("author", Text, nullable=False, server_default=text("'crm'")),
    Column("changed_by", Text),
    Column("reason", Text),
    Column("criteria", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    # Derived after each batch from the touches and members up to changed_at (event time):
    # the group as it was at the transition, whenever its messages arrived.
    Column("engaged_members", Integer),
    Column("members_count", Integer),
)
Index("ix_stage_changes_opportunity", stage_changes.c.opportunity_id, stage_changes.c.changed_at)

# A person's word on a criterion of the funnel: the latest (marked_at, event id) wins.
criterion_marks = Table(
    "criterion_marks", metadata,
    Column("opportunity_id", Text, primary_key=True),
    Column("criterion", Text, primary_key=True),
    Column("holds", Boolean, nullable=False),
    Column("evidence", Text),
    Column("marked_by", Text, nullable=False),
    Column("marked_at", TS, nullable=False),
    Column("event_id", Text, nullable=False),
)

# The seller's team: who plays each role; the latest (assigned_at, event id) wins.
opportunity_team = Table(
    "opportunity_team", metadata,
    Column("opportunity_id", Text, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("person", Text),
    Column("assigned_by", Text, nullable=False),
    Column("assigned_at", TS, nullable=False),
    Column("event_id", Text, nullable=False),
)

# Corrections people made (bg.correction.v1, issue 16): who, when, why and what, immutable by
# correction id, except that an undo marks the correction it reverts (undone_*).
corrections = Table(
    "corrections", metadata,
    Column("correction_id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    # The message key: the opportunity, or for a merge the surviving account.
    Column("subject", Text, nullable=False),
    Column("opportunity_id", Text),
    Column("person_id", Text),
    Column("author", Text, nullable=False),
    Column("made_at", TS, nullable=False),
    Column("reason", Text),
    # The type's own fields (role, stance, note, into/merged, undoes, ...), as on the topic.
    Column("detail", JSONB, nullable=False),
    Column("undone_by_id", Text),
    Column("undone_by", Text),
    Column("undone_at", TS),
    Column("undo_reason", Text),
)
Index("ix_corrections_opportunity", corrections.c.opportunity_id, corrections.c.made_at)
Index("ix_corrections_subject", corrections.c.subject, corrections.c.made_at)

# Derived from `corrections` after each batch: per member of an opportunity, the latest note and
# the latest stance that are not undone (so an undo restores the one before).
member_annotations = Table(
    "member_annotations", metadata,
    Column("opportunity_id", Text, primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("stance", Text),
    Column("influence", Text),
    Column("stance_by", Text),
    Column("stance_at", TS),
    Column("stance_correction_id", Text),
    Column("note", Text),
    Column("concerns", ARRAY(Text), nullable=False, server_default=EMPTY_ARRAY),
    Column("note_by", Text),
    Column("note_at", TS),
    Column("note_correction_id", Text),
)

# Derived from `corrections` after each batch: every merge in force (not undone), by the account
# absorbed. The API walks it to refuse a merge into itself or a cycle of merges (409).
account_merges = Table(
    "account_merges", metadata,
    Column("merged", Text, primary_key=True),
    Column("into", Text, nullable=False),
    Column("correction_id", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("made_at", TS, nullable=False),
)
Index("ix_account_merges_into", account_merges.c.into)

# The consumer's position, written in the same transaction as the rows it produced: after a
# crash the consumer seeks here, so every message is applied exactly once to the database.
consumer_offsets = Table(
    "consumer_offsets", metadata,
    Column("consumer", Text, primary_key=True),
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

# Tables whose content is a function of the topics; a rebuild reproduces them row for row.
PROJECTED = (accounts, contacts, opportunities, opportunity_members, touches, signals, score_history,
             stage_changes, criterion_marks, opportunity_team, corrections, member_annotations, account_merges,
             consumer_offsets)
