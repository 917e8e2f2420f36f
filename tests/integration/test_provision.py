"""The local resources come from infra/resources.yaml and match what production declares."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local.provision import load_template, provision, queue_urls_by_logical_name

# moto's CloudFormation skips the bucket policy and the alarms, as provision documents.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")

STAGE = "local"
APP_READS = {
    "STAGE",
    "TABLE_NAME",
    "TABLE_STREAM_ARN",
    "FULFILMENT_QUEUE_URL",
    "FULFILMENT_DLQ_URL",
    "NOTIFICATIONS_QUEUE_URL",
    "NOTIFICATIONS_DLQ_URL",
    "REPORTS_BUCKET",
    "ALERTS_TOPIC_ARN",
}


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    try:
        from infra.local.aws_emulator import start_in_thread
    except ImportError:
        start_in_thread = None
    if start_in_thread is not None:
        server = start_in_thread(0)
        try:
            yield server.url
        finally:
            server.stop()
        return
    from moto.server import ThreadedMotoServer

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        moto_server.stop()


@pytest.fixture(scope="module")
def env(endpoint_url: str) -> dict[str, str]:
    return provision(endpoint_url, STAGE)


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_environment_names_every_resource_the_app_reads(env: dict[str, str]) -> None:
    assert set(env) >= APP_READS
    assert all(env[name] for name in APP_READS)


def test_table_has_the_three_indexes_on_demand(env: dict[str, str], endpoint_url: str) -> None:
    table = client("dynamodb", endpoint_url).describe_table(TableName=env["TABLE_NAME"])["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"gsi1", "gsi2", "gsi3"}
    for name, index in indexes.items():
        keys = {k["AttributeName"]: k["KeyType"] for k in index["KeySchema"]}
        assert keys == {f"{name}pk": "HASH", f"{name}sk": "RANGE"}
        assert index["Projection"]["ProjectionType"] == "ALL"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_table_has_ttl_and_point_in_time_recovery(env: dict[str, str], endpoint_url: str) -> None:
    dynamodb = client("dynamodb", endpoint_url)
    ttl = dynamodb.describe_time_to_live(TableName=env["TABLE_NAME"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_ttl"}
    backups = dynamodb.describe_continuous_backups(TableName=env["TABLE_NAME"])
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


def test_table_stream_carries_both_images_of_a_write(
    env: dict[str, str], endpoint_url: str
) -> None:
    dynamodb = client("dynamodb", endpoint_url)
    table = dynamodb.describe_table(TableName=env["TABLE_NAME"])["Table"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table["LatestStreamArn"] == env["TABLE_STREAM_ARN"]

    key = {"pk": {"S": "provision-test"}, "sk": {"S": "stream"}}
    dynamodb.put_item(TableName=env["TABLE_NAME"], Item={**key, "n": {"N": "1"}})
    dynamodb.put_item(TableName=env["TABLE_NAME"], Item={**key, "n": {"N": "2"}})
    streams = client("dynamodbstreams", endpoint_url)
    shard = streams.describe_stream(StreamArn=env["TABLE_STREAM_ARN"])["StreamDescription"][
        "Shards"
    ][0]
    iterator = streams.get_shard_iterator(
        StreamArn=env["TABLE_STREAM_ARN"],
        ShardId=shard["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    ours = [r["dynamodb"] for r in records if r["dynamodb"]["Keys"] == key]
    assert ours[-1]["OldImage"]["n"] == {"N": "1"}
    assert ours[-1]["NewImage"]["n"] == {"N": "2"}


@pytest.mark.parametrize("queue", ["FULFILMENT", "NOTIFICATIONS"])
def test_work_queue_redrives_to_its_dead_letter_queue(
    queue: str, env: dict[str, str], endpoint_url: str
) -> None:
    sqs = client("sqs", endpoint_url)
    queue_url, dlq_url = env[f"{queue}_QUEUE_URL"], env[f"{queue}_DLQ_URL"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    max_receives = int(redrive["maxReceiveCount"])
    assert max_receives == 5

    # A message that is received and never deleted ends up in the dead-letter queue.
    sqs.send_message(QueueUrl=queue_url, MessageBody="poison")
    for _ in range(max_receives):
        received = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)
        assert [m["Body"] for m in received.get("Messages", [])] == ["poison"]
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]


def test_reports_bucket_is_encrypted_private_and_versioned(
    env: dict[str, str], endpoint_url: str
) -> None:
    s3 = client("s3", endpoint_url)
    bucket = env["REPORTS_BUCKET"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_alerts_topic_accepts_a_publish(env: dict[str, str], endpoint_url: str) -> None:
    sns = client("sns", endpoint_url)
    assert sns.publish(TopicArn=env["ALERTS_TOPIC_ARN"], Message="test")["MessageId"]


def test_email_is_sent_with_the_stages_configuration_set_and_never_with_an_unknown_one(
    env: dict[str, str], endpoint_url: str
) -> None:
    ses = client("ses", endpoint_url)
    send = {
        "Source": env["NOTIFICATIONS_FROM_EMAIL"],
        "Destination": {"ToAddresses": ["li.lei@example.com"]},
        "Message": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hi."}}},
    }

    assert env["SES_CONFIGURATION_SET"] == "orderdesk-local"
    assert ses.send_email(**send, ConfigurationSetName=env["SES_CONFIGURATION_SET"])["MessageId"]
    with pytest.raises(ses.exceptions.ConfigurationSetDoesNotExistException):
        ses.send_email(**send, ConfigurationSetName="orderdesk-elsewhere")


def test_created_queues_are_exactly_the_templates(env: dict[str, str], endpoint_url: str) -> None:
    template = load_template()
    declared = {
        resource["Properties"]["QueueName"]["Fn::Sub"].replace("${Stage}", env["STAGE"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SQS::Queue"
    }
    prefix = f"orderdesk-{env['STAGE']}-"
    urls = client("sqs", endpoint_url).list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    assert {url.rsplit("/", 1)[-1] for url in urls} == declared


def test_provisioning_again_returns_the_same_environment(
    env: dict[str, str], endpoint_url: str
) -> None:
    again = provision(endpoint_url, env["STAGE"])
    assert again == env
    stacks = client("cloudformation", endpoint_url).describe_stacks()["Stacks"]
    assert [s["StackName"] for s in stacks].count(f"orderdesk-{env['STAGE']}") == 1


def test_handler_queue_names_map_to_the_queue_urls(env: dict[str, str]) -> None:
    assert queue_urls_by_logical_name(env) == {
        "fulfilment": env["FULFILMENT_QUEUE_URL"],
        "notifications": env["NOTIFICATIONS_QUEUE_URL"],
        "operations": env["OPERATIONS_QUEUE_URL"],
        "analytics": env["ANALYTICS_QUEUE_URL"],
    }
