"""The aws backend: workers as AWS Batch jobs, and the provisioning of a home's AWS resources."""
