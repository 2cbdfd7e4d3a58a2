/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet CNI plugin entry point: everything lives in libkvcni (cni/cni.h). */
#include "cni/cni.h"

extern char **environ;

int main(void) {
        return cni_run(stdin, stdout, stderr, environ);
}
