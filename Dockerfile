# One image for every Lintas role; the command picks the role (lintas registry, lintas worker, ...).
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir /app
ENTRYPOINT []
CMD ["lintas", "--help"]
