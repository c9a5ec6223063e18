/* TEST FIXTURE: the text Docker's hello-world prints (as the course shows it), for a stand-in image; where the
   real image names its registry's site, the stand-in says so instead (the lab reads "Hello from Docker!"). */
#include <unistd.h>

static const char message[] =
    "\n"
    "Hello from Docker!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "\n"
    "To generate this message, Docker took the following steps:\n"
    " 1. The Docker client contacted the Docker daemon.\n"
    " 2. The Docker daemon pulled the \"hello-world\" image from the Docker Hub.\n"
    "    (amd64)\n"
    " 3. The Docker daemon created a new container from that image which runs the\n"
    "    executable that produces the output you are currently reading.\n"
    " 4. The Docker daemon streamed that output to the Docker client, which sent it\n"
    "    to your terminal.\n"
    "\n"
    "To try something more ambitious, you can run an Ubuntu container with:\n"
    " $ docker run -it ubuntu bash\n"
    "\n"
    "Share images, automate workflows, and more with a free Docker ID:\n"
    " (the registry's site)\n"
    "\n"
    "For more examples and ideas, visit:\n"
    " https://docs.docker.com/get-started/\n"
    "\n";

int main(void) {
    return write(1, message, sizeof message - 1) == (long) (sizeof message - 1) ? 0 : 1;
}
