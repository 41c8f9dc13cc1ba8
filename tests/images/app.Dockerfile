# The application container of the image tests: nginx on 127.0.0.1:8080 and curl (to send
# requests from inside the pod). Built on the debootstrap'd Debian base by tests/images/run.sh.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY nginx.conf /etc/nginx/nginx.conf
CMD ["nginx", "-g", "daemon off;"]
