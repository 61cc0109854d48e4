/*
 * The pods' sandbox process (containerd's sandbox_image), as the upstream
 * pause: it holds the pod's namespaces, sleeps, reaps any child it
 * inherits, and exits 0 on SIGTERM or SIGINT. Built static (gcc -static)
 * into a FROM scratch image, since no image can be pulled here.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void) {
	struct sigaction sa = {0};
	sa.sa_handler = stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;)
		pause();
	return 1;
}
