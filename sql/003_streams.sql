-- 003_streams: the sequences behind the sync streams other than room events
-- (events_stream_seq is in 002). Typing lives in memory only.
CREATE SEQUENCE account_data_stream_seq;
CREATE SEQUENCE receipts_stream_seq;
CREATE SEQUENCE to_device_stream_seq;
CREATE SEQUENCE device_lists_stream_seq;
CREATE SEQUENCE presence_stream_seq;
