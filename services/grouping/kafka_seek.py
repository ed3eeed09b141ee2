"""Makes the seek back to committed offsets also cover partitions that have none.

faust drops records fetched around a rebalance, or while its flow is paused, and re-reads
them by seeking every assigned partition back to its committed offset
(Consumer.perform_seek -> AIOKafkaConsumer.seek_to_committed). aiokafka skips a partition
whose committed offset is missing or 0, so on a partition the group never committed (a new or
sparse topic) those records were never processed: seen with two workers starting together,
and with a worker restarted before its first commit. Such a partition goes back to its
beginning instead; reading it again is harmless, the reducers are idempotent.

This runs on the consumer's own thread, where faust makes the call; faust's Consumer.seek
does not (it calls aiokafka from the event loop's thread) and races the fetcher.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

_seek_to_committed = AIOKafkaConsumer.seek_to_committed


async def _seek_to_committed_or_beginning(self: AIOKafkaConsumer, *partitions: TopicPartition) -> dict:
    committed = await _seek_to_committed(self, *partitions)
    # Changelog partitions are positioned by faust's table recovery, never by commits.
    never = [tp for tp, offset in committed.items() if not offset and not tp.topic.endswith("-changelog")]
    if never:
        await self.seek_to_beginning(*never)
    return committed


def install() -> None:
    AIOKafkaConsumer.seek_to_committed = _seek_to_committed_or_beginning
