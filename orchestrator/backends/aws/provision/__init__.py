"""A home's AWS resources for the aws backend: ``cortex-tui aws setup | status | teardown``.

``setup`` makes what the aws backend runs on, each resource named after the home and tagged
``cortex-tui-home=<tag>``: an S3 bucket (control files and spilled messages under ``jobs/``,
which expire after 7 days), an ECR repository (API images), a CloudWatch log group (worker
output, 14 days), IAM roles (Batch's service role; the task execution role, which pulls
images and writes logs; the job role, which workers use for the home's SQS queues and
``jobs/`` objects; with ``--gpu`` an EC2 instance role), a managed Batch compute environment
that scales to zero, and its job queue. Each step first looks for what is there, so setup is
safe to repeat and finishes a half-done one; ``teardown`` removes the same in reverse order.
A bucket or job queue named by ``aws_bucket`` or ``aws_job_queue`` is the user's: used as is,
never emptied or deleted.

Modules: ``home`` (where a home's resources live, the resource interface), ``storage``
(bucket, repository, log group), ``roles`` (IAM), ``batch`` (compute environment, job
queue), ``commands`` (the three commands), ``__main__`` (their command line).
"""
