/* SPDX-License-Identifier: Apache-2.0 */
#include <smcore/smcore.h>

SMCORE_API const char *smcore_version(void)
{
	return SMCORE_VERSION;
}
